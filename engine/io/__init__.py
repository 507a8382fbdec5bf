"""Files in and out: images (imageio), OpenRaster documents (ora), host samples (pixels) and
atomic writes (files). Nothing here knows about regions or motions."""
