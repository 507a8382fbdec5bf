"""`simnet`: the command line.

Exit codes: 0 done, 2 bad input (the message says what to fix), 1 internal error. Errors are
one line on stderr; `--debug` adds the traceback. Progress goes to stderr once a command has run
for a second; `--quiet` silences it.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from .. import regions, replay
from ..edit import Edit, from_colour_maps, from_masks
from ..errors import InputError
from ..io import imageio
from ..io.files import write_bytes_atomically
from ..models import MotionModel, default_model, load_model, model_descriptions
from ..pipeline import DEFAULT_MAX_REGIONS, run
from ..progress import StageProgress

PROGRESS_AFTER = 1.0  # seconds


def _model_help() -> str:
    described = [f"{name} ({description})" for name, description in model_descriptions().items()]
    name, note = default_model()
    return f"motion model (default: {name}{f' ({note})' if note else ''}); available: " + "; ".join(described)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="simnet",
        description="Reshape, move or re-lay-out regions of an artwork, made from its own pixels.",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    # The same two options after the command name too (`simnet manipulate ... --quiet`); SUPPRESS
    # keeps a command's parser from resetting what was given before it.
    anywhere = argparse.ArgumentParser(add_help=False)
    anywhere.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress output")
    anywhere.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, **options) -> argparse.ArgumentParser:
        return subparsers.add_parser(name, parents=[anywhere], **options)

    manipulate = command(
        "manipulate",
        help="move, reshape or rearrange parts of a painting",
        description="Move, reshape or rearrange parts of a painting (the exemplar), with nothing but\n"
        "the painting's own pixels. Say what changes in one of two ways: two masks (white selects:\n"
        "the part, and where it goes), or two painted region maps (flat colours, the same colour\n"
        "being the same region: the painting's regions, and the new layout). Maps and masks may be\n"
        "drawn at another scale, in the painting's proportions.",
        epilog="examples:\n"
        "  # move or reshape one part: two masks\n"
        "  simnet manipulate painting.jpg --source-mask part.png --target-mask there.png -o result.png\n"
        "  # rearrange regions: the painting's map and the new layout (simnet segment makes a first map)\n"
        "  simnet manipulate painting.jpg --regions painting.regions.png --target layout.png -o result.png\n"
        "  # one edit, every layer: solve it once on the painting, then replay it on each layer\n"
        "  simnet manipulate painting.png --regions map.png --target layout.png -o result.png --save-edit edit.npz\n"
        "  simnet manipulate lineart.png --apply-edit edit.npz -o lineart.moved.png",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    manipulate.add_argument("exemplar", type=Path, help="the painting (PNG, JPEG, TIFF, WebP)")
    manipulate.add_argument("--regions", type=Path, help="region map of the painting")
    manipulate.add_argument("--target", type=Path, help="edited region map: the new layout")
    manipulate.add_argument("--source-mask", type=Path, help="mask of the part to move or reshape")
    manipulate.add_argument("--target-mask", type=Path, help="mask of where it should go")
    manipulate.add_argument("-o", "--output", type=Path, required=True, help="the result (a new file; inputs are never written)")
    manipulate.add_argument("--explain", type=Path, metavar="SHEET.png", help="also write an explain sheet")
    manipulate.add_argument(
        "--provenance",
        type=Path,
        metavar="FILE.npz",
        help="also write where every output pixel came from: source_x, source_y (exemplar pixel), "
        "source_region (its exemplar region id) and kind (0 unchanged, 1 warped, 2 filled)",
    )
    manipulate.add_argument(
        "--save-edit",
        type=Path,
        metavar="EDIT.npz",
        help="also save the solved edit, to replay it on other layers or files with --apply-edit",
    )
    manipulate.add_argument(
        "--apply-edit",
        type=Path,
        metavar="EDIT.npz",
        help="replay an edit saved with --save-edit instead of solving one (no maps or masks): the "
        "same move on another layer of the same picture, or on the picture at another size",
    )
    _add_common(manipulate)

    segment = command(
        "segment", help="write an automatic colour region map that you can repaint"
    )
    segment.add_argument("image", type=Path)
    segment.add_argument("-o", "--output", type=Path, required=True, help="region map (.png)")
    segment.add_argument("--max-regions", type=int, default=None, help="merge down to this many regions")
    segment.add_argument(
        "--min-share", type=float, default=0.015, help="merge regions smaller than this share of the image"
    )
    segment.add_argument("--max-pixels", type=int, default=imageio.DEFAULT_MAX_PIXELS, help=argparse.SUPPRESS)

    worker = command(
        "worker",
        help="serve the plug-ins over stdin/stdout (started by them; not for typing)",
        description="Speak the framed protocol of engine/link/protocol.py on stdin and stdout. No network port.",
    )
    worker.add_argument("--idle-timeout", type=float, default=600.0, help="exit after this many idle seconds")
    worker.add_argument("--max-pixels", type=int, default=imageio.DEFAULT_MAX_PIXELS, help="refuse larger images")
    worker.add_argument("--frame-timeout", type=float, default=30.0,
                        help="give up a request whose bytes stop coming after this many seconds")

    install = command("install-plugin", help="install the Krita or GIMP plug-in, wired to this environment")
    install.add_argument("host", choices=["krita", "gimp"])
    install.add_argument("--uninstall", action="store_true", help="remove it instead")
    install.add_argument("--dry-run", action="store_true", help="say what would be done, change nothing")
    install.add_argument("--profile", type=Path, help="Krita's resource folder (default ~/.local/share/krita), or "
                         "a GIMP profile folder (default: both ~/.config/GIMP/3.0 and 3.2)")
    install.add_argument("--config", type=Path, help="the folder holding kritarc (default ~/.config)")

    package = command("package", help="build the plug-in's zip (the engine inside, for its Install engine...)",
                      description="Build the plug-in's zip: for Krita's Tools > Scripts > Import Python Plugin from "
                      "File, or for GIMP to unzip into its plug-ins folder. It carries the engine as a wheel, which the "
                      "plug-in's 'Install SIM-Net engine...' installs on a machine that has none.")
    package.add_argument("host", choices=["krita", "gimp"])
    package.add_argument("-o", "--output", type=Path, help="default: simnet_manipulate_HOST.zip")

    train = command(
        "train",
        help="train SIM-Net on a folder of artworks, or fine-tune a checkpoint (needs the train extra)",
        description="Images of any size in DIR, with optional region maps beside them (NAME.regions.png); "
        "artworks without a map are segmented automatically. Under torchrun it trains on every process.",
    )
    train.add_argument("--data", type=Path, required=True, metavar="DIR", help="folder of artworks")
    train.add_argument("-o", "--out", type=Path, default=Path("simnet-training"), help="output folder (default ./simnet-training)")
    train.add_argument("--preset", default="small", help="model sizes: small (default) or paper")
    train.add_argument("--steps", type=int, default=200, help="train up to this step count")
    train.add_argument("--batch-size", type=int, help="pairs per step and process (default: the preset's)")
    train.add_argument("--learning-rate", type=float, help="Adam's (default: the preset's)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    train.add_argument("--init", type=Path, metavar="CHECKPOINT", help="start from this checkpoint's weights (fine-tuning)")
    train.add_argument("--exclude", nargs="*", default=[], metavar="NAME", help="artworks to hold out (file names or stems)")
    train.add_argument("--sample-every", type=int, default=50, help="write a sample grid every N steps")
    train.add_argument("--checkpoint-every", type=int, default=50, help="write the checkpoint every N steps")
    train.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    train.add_argument("--no-perceptual", action="store_true", help="skip the VGG perceptual and style losses (faster)")
    train.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")

    batch = command(
        "batch",
        help="apply one manipulation to every layer of an .ora, every image of a folder, or a JSONL job list",
        description="INPUT is an OpenRaster file (results go into a new .ora, each above its source), a "
        "folder of images (results into the folder OUT) or a JSON Lines file of jobs (keys: exemplar, output, "
        "and regions + target or source_mask + target_mask; optional id, model). Finished jobs write a JSON "
        "report each; failures are reported and the batch goes on.",
    )
    batch.add_argument("input", type=Path)
    batch.add_argument("-o", "--output", type=Path, help="the new .ora, or the output folder (not for JSONL)")
    batch.add_argument("--regions", type=Path, help="region map shared by every input")
    batch.add_argument("--target", type=Path, help="edited region map shared by every input")
    batch.add_argument("--source-mask", type=Path)
    batch.add_argument("--target-mask", type=Path)
    batch.add_argument("--maps-dir", type=Path, help="per-input maps by name: NAME.regions.png and NAME.target.png")
    batch.add_argument("--apply-edit", type=Path, metavar="EDIT.npz",
                       help="replay this saved edit (simnet manipulate --save-edit) on every input instead of solving")
    batch.add_argument("--together", action="store_true",
                       help=".ora: solve the edit once, on the visible picture, and replay it on every chosen layer, "
                       "so that they all move alike; the new .ora mirrors the stack")
    batch.add_argument("--solve-on", metavar="LAYER", help="with --together: solve on this layer instead (e.g. the flat colours)")
    batch.add_argument("--layers", nargs="+", metavar="PATTERN", help=".ora layers whose names match (shell patterns)")
    batch.add_argument("--visible-only", action="store_true", help=".ora: only visible layers")
    batch.add_argument("--replace", action="store_true", help=".ora: the result replaces its source in the copy")
    batch.add_argument("--jobs", type=int, default=1, help="parallel processes on this machine")
    batch.add_argument("--ray", metavar="ADDRESS", help="run on this Ray cluster instead (the ray extra)")
    batch.add_argument("--resume", action="store_true", help="skip jobs finished by an earlier run")
    batch.add_argument("--report", type=Path, help="report folder (default: OUTPUT.report, or INPUT.report for JSONL)")
    batch.add_argument("--model", default=None, help="default: the engine's default model")

    export = command(
        "export", help="export a training checkpoint to ONNX graphs with a model card (needs the train extra)"
    )
    export.add_argument("checkpoint", type=Path)
    export.add_argument("-o", "--out", type=Path, required=True, help="model folder to write (replaced)")
    export.add_argument("--name", help="the model's name in its card (default simnet-PRESET)")
    export.add_argument("--training-notes", type=Path, metavar="JSON", help="command, wall time, hardware: recorded in the card")

    doctor = command("doctor", help="check ONNX Runtime, devices and model files")
    doctor.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])

    demo = command("demo", help="run the bundled sample (Monet, Water Lilies, 1600 x 1052: a water lily moved)")
    demo.add_argument("-o", "--output-dir", type=Path, default=Path("simnet-demo"), help="default: ./simnet-demo")
    _add_common(demo)
    return parser


def _add_common(command: argparse.ArgumentParser) -> None:
    command.add_argument("--model", default=None, help=_model_help())
    command.add_argument(
        "--max-pixels",
        type=int,
        default=imageio.DEFAULT_MAX_PIXELS,
        help=f"refuse larger images (default {imageio.DEFAULT_MAX_PIXELS}, 8192x8192)",
    )
    command.add_argument("--max-regions", type=int, default=DEFAULT_MAX_REGIONS,
                         help=f"refuse maps with more regions (default {DEFAULT_MAX_REGIONS})")


def _check_npz_output(path: Path | None, what: str) -> None:
    if path is None:
        return
    if path.suffix.lower() != ".npz":
        raise InputError(f"{path}: the {what} is written as .npz")
    if not path.parent.is_dir():
        raise InputError(f"{path}: the folder {path.parent} does not exist")


def _manipulate(
    picture: imageio.Picture,
    edit: Edit,
    model: MotionModel,
    output: Path,
    explain: Path | None,
    args: argparse.Namespace,
    inputs: tuple[Path, ...] = (),
) -> None:
    provenance_path = getattr(args, "provenance", None)
    edit_path = getattr(args, "save_edit", None)
    # every output checked before the work, which takes minutes on a large painting
    _check_npz_output(provenance_path, "provenance")
    _check_npz_output(edit_path, "solved edit")
    if edit_path is not None and edit_path.resolve() in {p.resolve() for p in inputs}:
        raise InputError(f"{edit_path} is one of the inputs: the solved edit must go to a new file")
    imageio.check_output(output, picture.pixels.shape[2], inputs)
    if explain is not None:
        imageio.check_output(explain, 3, inputs)
    default, note = default_model()
    if args.model is None and note and not args.quiet:
        print(f"simnet: note: using the baseline '{default}': {note}", file=sys.stderr)
    progress = StageProgress(args.quiet, PROGRESS_AFTER, time.monotonic())
    result = run(
        picture.pixels,
        edit,
        model=model,
        progress=progress,
        max_regions=args.max_regions,
        provenance=explain is not None or provenance_path is not None,
        solved=edit_path is not None,
    )
    progress("writing", 0.0)
    imageio.write_image(output, result.pixels, picture.bit_depth, picture.icc_profile)
    if provenance_path is not None:
        write_provenance(provenance_path, result.provenance)
    if edit_path is not None and result.solved is not None:
        replay.save(result.solved, edit_path)
    if explain is not None:
        from .explain import explain_sheet

        imageio.write_image(explain, explain_sheet(picture.pixels, result, edit.palette) / 255.0)
    progress.done()
    if not args.quiet:
        print(f"wrote {output}" + (f" and {explain}" if explain else "") + (f" and {edit_path}" if edit_path else ""), file=sys.stderr)


def write_provenance(path: Path, provenance) -> None:
    """The provenance as a compressed .npz of four (H, W) arrays (see engine.compose)."""
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        source_x=provenance.source_x,
        source_y=provenance.source_y,
        source_region=provenance.source_region,
        kind=provenance.kind,
    )
    write_bytes_atomically(path, buffer.getvalue())


def command_manipulate(args: argparse.Namespace) -> None:
    by_maps = args.regions is not None or args.target is not None
    by_masks = args.source_mask is not None or args.target_mask is not None
    if args.apply_edit is not None:
        if by_maps or by_masks or args.save_edit is not None or args.explain is not None or args.provenance is not None:
            raise InputError("--apply-edit replays a saved edit: give no maps, masks, --save-edit, --explain or --provenance with it")
        _apply_saved_edit(args)
        return
    if by_maps == by_masks:
        raise InputError("give either --regions and --target, or --source-mask and --target-mask")
    model = load_model(args.model)  # an unknown model fails before any file is read
    picture = imageio.read_image(args.exemplar, args.max_pixels)
    if by_maps:
        if args.regions is None or args.target is None:
            raise InputError("--regions and --target go together: give both region maps")
        edit = from_colour_maps(
            imageio.read_rgb8(args.regions, args.max_pixels), imageio.read_rgb8(args.target, args.max_pixels)
        )
    else:
        if args.source_mask is None or args.target_mask is None:
            raise InputError("--source-mask and --target-mask go together: give both masks")
        source = imageio.read_mask(args.source_mask, args.max_pixels)
        target = imageio.read_mask(args.target_mask, args.max_pixels)
        edit = from_masks(picture.pixels.shape[:2], source, target)
    given = (args.exemplar, args.regions, args.target, args.source_mask, args.target_mask)
    _manipulate(picture, edit, model, args.output, args.explain, args, tuple(p for p in given if p is not None))


def _apply_saved_edit(args: argparse.Namespace) -> None:
    """`simnet manipulate LAYER --apply-edit EDIT.npz -o OUT`: replay, resampled to the layer's size."""
    solved = replay.load(args.apply_edit)
    picture = imageio.read_image(args.exemplar, args.max_pixels)
    imageio.check_output(args.output, picture.pixels.shape[2], (args.exemplar, args.apply_edit))
    height, width = picture.pixels.shape[:2]
    result = replay.apply(replay.resized(solved, height, width), picture.pixels)
    imageio.write_image(args.output, result, picture.bit_depth, picture.icc_profile)
    if not args.quiet:
        print(f"wrote {args.output}", file=sys.stderr)


def command_segment(args: argparse.Namespace) -> None:
    from ..segment import segment

    if args.output.suffix.lower() != ".png":
        raise InputError(f"{args.output}: write region maps as .png (lossy formats blur the colours)")
    picture = imageio.read_image(args.image, args.max_pixels)
    labels = segment(picture.pixels, min_share=args.min_share, max_regions=args.max_regions)
    imageio.write_image(args.output, regions.colour_map(labels) / 255.0)
    if not args.quiet:
        print(f"wrote {args.output}: {labels.max() + 1} regions", file=sys.stderr)


def command_demo(args: argparse.Namespace) -> None:
    from ..samples import DEMO, load_sample

    args.output_dir.mkdir(parents=True, exist_ok=True)
    model = load_model(args.model)
    sample = load_sample(args.max_pixels, DEMO)
    output = args.output_dir / f"{DEMO.name}.result.png"
    _manipulate(sample.picture, sample.edit, model, output, args.output_dir / f"{DEMO.name}.explain.png", args)


def command_train(args: argparse.Namespace) -> None:
    try:
        import torch
    except ImportError:
        raise InputError("training needs PyTorch: pip install 'simnet-manipulate[train]'") from None
    from ..simnet.config import PRESETS
    from ..simnet.train import TrainOptions, train

    if args.preset not in PRESETS:
        raise InputError(f"unknown preset '{args.preset}'; choose one of: {', '.join(sorted(PRESETS))}")
    if args.resume and args.init:
        raise InputError("--resume continues this folder's own checkpoint; --init starts a new run from another: give one")
    if args.steps < 1:
        raise InputError("--steps must be at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    options = TrainOptions(
        data=args.data, out=args.out, preset=args.preset, steps=args.steps, batch_size=args.batch_size,
        learning_rate=args.learning_rate, seed=args.seed, resume=args.resume, init=args.init,
        exclude=tuple(args.exclude), sample_every=args.sample_every, checkpoint_every=args.checkpoint_every,
        device=args.device, perceptual=not args.no_perceptual, quiet=args.quiet,
    )
    train(options)


def command_batch(args: argparse.Namespace) -> None:
    from . import batch
    from .memory import keep_freed_memory

    keep_freed_memory()  # many jobs in one process (engine/app/memory.py)
    if args.jobs < 1:
        raise InputError("--jobs must be at least 1")

    def absolute(path: Path | None) -> Path | None:  # jobs may run in another folder
        return path.resolve() if path is not None else None

    given = (args.regions, args.target, args.source_mask, args.target_mask, args.maps_dir, args.apply_edit)
    edit = batch.EditFiles(*(absolute(p) for p in given))
    source = args.input.resolve()
    if args.solve_on is not None and not args.together:
        raise InputError("--solve-on goes with --together: it names the layer to solve on")
    if args.together and source.suffix.lower() != ".ora":
        raise InputError("--together applies to an .ora's layers; for files use simnet manipulate --save-edit, "
                         "then simnet batch --apply-edit")
    if args.apply_edit is not None and (args.together or any(given[:5])):
        raise InputError("--apply-edit replays a saved edit: give no maps, masks or --together with it")
    if args.together and args.maps_dir is not None:
        raise InputError("--together solves one edit for every layer: give --regions and --target, or the two masks, not --maps-dir")
    args.output = absolute(args.output)
    assembled: list[Path] = []
    if source.suffix.lower() == ".jsonl":
        jobs = batch.plan_jsonl(source)
        reports = args.report or source.with_name(source.name + ".report")
    else:
        if args.output is None:
            raise InputError("give -o/--output: the new .ora file, or the output folder")
        if args.output.resolve() == source.resolve():
            raise InputError("the output must differ from the input: the input is never written")
        if source.suffix.lower() == ".ora":
            if args.output.suffix.lower() != ".ora":
                raise InputError("an .ora input makes an .ora output: give -o NAME.ora")
            if args.together:  # planned as replays of the edit solved below, once the plan is checked
                edit = batch.EditFiles(solved_edit=batch.parts_folder(args.output) / "solved-edit.npz")
            jobs = batch.plan_ora(source, args.output, edit, args.model, args.layers or [], args.visible_only)
            assembled = [args.output]
        elif source.is_dir():
            jobs = batch.plan_folder(source, args.output, edit, args.model)
        else:
            raise InputError(f"{source} is not an .ora file, a folder or a .jsonl job file")
        reports = args.report or args.output.with_name(args.output.name + ".report")
    reports = reports.resolve()
    batch.check_plan(jobs, reports, inputs=[source] if not source.is_dir() else [], outputs=assembled)
    if args.together:
        shared = batch.EditFiles(*(absolute(p) for p in given[:4]))
        solved = Path(jobs[0].solved_edit or "")
        if not (args.resume and solved.is_file()):
            batch.solve_together(source, shared, args.model, args.solve_on, solved)
    results = batch.execute(jobs, reports, args.jobs, args.ray, args.resume, args.quiet, also_written=assembled)
    failed = [r for r in results if r["status"] != "done"]
    if source.suffix.lower() == ".ora":
        placed = batch.assemble_ora(source, args.output, jobs, results, args.replace, mirror=args.together)
        if not args.quiet:
            print(f"wrote {args.output}: {placed} manipulated layer(s)", file=sys.stderr)
    if not args.quiet:  # like every other command: what was written goes to stderr, --quiet silences it
        print(f"{len(results) - len(failed)} of {len(results)} jobs done; reports in {reports}", file=sys.stderr)
    if failed:
        raise BatchFailures(f"{len(failed)} of {len(results)} jobs failed (first: {failed[0]['id']}: {failed[0]['error']})")


class BatchFailures(Exception):
    """Some jobs of a batch failed: reported, exit status 1."""


def command_export(args: argparse.Namespace) -> None:
    try:
        from export.onnx_export import export_checkpoint
    except ImportError as error:
        raise InputError(f"export needs the train extra (pip install 'simnet-manipulate[train]'): {error}") from None
    import json

    training = None
    if args.training_notes:
        try:
            training = json.loads(args.training_notes.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise InputError(f"cannot read the training notes {args.training_notes}: {error}") from None
    log = (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr))
    card = export_checkpoint(args.checkpoint, args.out, args.name, training, log)
    print(f"wrote {args.out}: {', '.join(sorted(card['sha256']))} and card.json")


def command_doctor(args: argparse.Namespace) -> None:
    from .doctor import report

    lines, ok = report(args.device)
    print("\n".join(lines))
    if not ok:
        raise InputError("not ready: see the lines above")


def command_worker(args: argparse.Namespace) -> int:
    from .worker import main as serve

    if not args.frame_timeout > 0:
        raise InputError("--frame-timeout must be a positive number of seconds")
    return serve(args.idle_timeout, args.max_pixels, args.frame_timeout)


def command_install(args: argparse.Namespace) -> None:
    from .install import install_gimp, install_krita

    if args.host == "gimp":
        actions = install_gimp(args.profile, args.uninstall, args.dry_run)
    else:
        actions = install_krita(args.profile, args.config, args.uninstall, args.dry_run)
    for action in actions:
        print(("would " if args.dry_run else "") + action)


def command_package(args: argparse.Namespace) -> None:
    from .install import package_gimp, package_krita

    output = args.output or Path(f"simnet_manipulate_{args.host}.zip")
    print(f"wrote {(package_krita if args.host == 'krita' else package_gimp)(output)}")


COMMANDS = {
    "install-plugin": command_install,
    "package": command_package,
    "manipulate": command_manipulate,
    "segment": command_segment,
    "demo": command_demo,
    "worker": command_worker,
    "train": command_train,
    "export": command_export,
    "doctor": command_doctor,
    "batch": command_batch,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status = COMMANDS[args.command](args)
    except InputError as error:
        print(f"simnet: error: {error}", file=sys.stderr)
        return 2
    except BatchFailures as error:
        print(f"simnet: {error}", file=sys.stderr)
        return 1
    except MemoryError:
        print("simnet: error: out of memory; try a smaller image or fewer regions", file=sys.stderr)
        return 1
    except Exception as error:  # an engine bug: one line unless --debug
        if args.debug:
            traceback.print_exc()
        print(f"simnet: internal error: {type(error).__name__}: {error} (run with --debug for details)", file=sys.stderr)
        return 1
    return status if isinstance(status, int) else 0


if __name__ == "__main__":
    sys.exit(main())
