"""SIM-Net Manipulate for Krita: registers the extension (Filter menu actions)."""

from krita import Krita

from .extension import SimnetExtension

Krita.instance().addExtension(SimnetExtension(Krita.instance()))
