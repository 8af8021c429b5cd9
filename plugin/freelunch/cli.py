"""The ``freelunch`` command line: thin click wrappers over the library."""
from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click

from . import presets as preset_store

USER_ERRORS = (ValueError, TypeError, OSError, KeyError)


def fail_cleanly(fn):
    """Turn a user error into one line and exit status 1, instead of a traceback."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as e:
            raise click.ClickException(str(e) or type(e).__name__) from None

    return wrapper


@click.group()
@click.version_option(package_name="freelunch")
def main():
    """freelunch: speech enhancement whose pruning gates tell you what is in the audio."""


def collect_inputs(inputs: tuple[str, ...]) -> list[tuple[Path, Path]]:
    """(file, path relative to the output folder) for every audio file named or inside a named folder."""
    from .files import AUDIO_EXTENSIONS, check_input

    found = []
    for item in map(Path, inputs):
        if item.is_dir():
            files = sorted(p for p in item.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
            if not files:
                raise ValueError(f"no audio files in folder {item}")
            found += [(p, p.relative_to(item)) for p in files]
        else:
            found.append((check_input(item), Path(item.name)))
    return found


def make_folder(folder: Path) -> None:
    """Create an output folder (and its parents), naming the file that stands in the way."""
    for part in (folder, *folder.parents):
        if part.exists() and not part.is_dir():
            raise ValueError(f"cannot make output folder {folder}: {part} is a file")
    folder.mkdir(parents=True, exist_ok=True)


def format_summary(src: Path, summary: dict) -> str:
    """One line a user reads after each file."""
    parts = [f"{summary['duration_s']:.1f} s", f"speech {100 * summary['speech_share']:.0f} %"]
    if summary["median_speech_snr_db"] is not None:
        parts.append(f"median speech SNR {summary['median_speech_snr_db']:.0f} dB")
    if summary["noise"] is not None:
        parts.append(f"noise {summary['noise']} (confidence {summary['noise_confidence']:.2f})")
    if summary["mean_usage"] is not None:
        parts.append(f"channel usage {summary['mean_usage']:.2f}")
    return f"{src}: " + ", ".join(parts)


def report_options(command):
    """--quiet and --json: what is printed after each file."""
    command = click.option("--json", "as_json", is_flag=True,
                           help="Print one JSON object per file: its outputs and its summary.")(command)
    return click.option("--quiet", is_flag=True, help="Print only the paths written, no summary.")(command)


def vad_options(command):
    """The effect's VAD decision, and the noise labels' confidence, as options; each defaults to
    the preset's value."""
    options = [
        click.option("--noise-threshold", type=click.FloatRange(0, 1), default=None,
                     help="Probability a noise class needs before a label names it (else 'unknown')."),
        click.option("--vad-threshold", type=float, default=None, help="VAD probability that counts as speech."),
        click.option("--min-speech-ms", type=float, default=None, help="Drop speech runs shorter than this (0: off)."),
        click.option("--min-silence-ms", type=float, default=None, help="Fill gaps in speech shorter than this (0: off)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", required=True, help="Output file (one input) or folder.")
@click.option("--preset", default="balanced", show_default=True, help="Preset name or folder.")
@click.option("--labels", "label_formats", multiple=True, help="Also write labels in this format (repeatable).")
@click.option("--attenuation-limit", type=float, default=None, help="Most noise reduction in dB.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@click.option("--jobs", type=click.IntRange(1, 64), default=1, show_default=True, help="Files processed in parallel.")
@vad_options
@report_options
@fail_cleanly
def enhance(inputs, output, preset, label_formats, attenuation_limit, overwrite, jobs, quiet, as_json, **vad):
    """Enhance audio files or folders, keeping each file's format, rate and channels."""
    from .effect import DynCPEnhancer
    from .export import check_format, export, label_path
    from .files import AUDIO_EXTENSIONS, enhance_file

    for fmt in label_formats:
        check_format(fmt)
    pairs = collect_inputs(inputs)
    out = Path(output)
    single = len(pairs) == 1 and out.suffix.lower() in AUDIO_EXTENSIONS
    if not single:
        make_folder(out)
    jobs_list = [(src, out if single else out / rel) for src, rel in pairs]
    settings = dict(attenuation_limit_db=attenuation_limit, **vad)
    DynCPEnhancer.from_preset(preset, **settings)  # fail early on a bad preset or setting

    def enhance_one(job, progress):
        src, dst = job
        make_folder(dst.parent)
        track = enhance_file(src, dst, DynCPEnhancer.from_preset(preset, **settings), overwrite=overwrite,
                             progress=progress)
        for fmt in label_formats:
            export(track, label_path(dst, fmt), fmt, audio_path=dst)
        return [dst, *(label_path(dst, fmt) for fmt in label_formats if fmt != "wav-cue")], track

    run_jobs(jobs_list, enhance_one, jobs, "enhancing", quiet, as_json)


def run_jobs(jobs_list: list[tuple[Path, object]], work, jobs: int, label: str, quiet: bool = False,
             as_json: bool = False) -> None:
    """Run ``work(job, progress) -> (paths written, track)`` over (input file, destination) jobs
    on ``jobs`` threads, one progress bar over all input samples; print each path written and
    the file's summary (``quiet``: the paths alone; ``as_json``: one JSON object per file).

    A file that fails does not stop the others: each failure is one line naming the file, and
    the run ends in an error that counts them.
    """
    from .files import open_audio

    failures: list[str] = []

    def failed(src: Path, e: Exception) -> None:
        message = str(e) or type(e).__name__
        failures.append(message if str(src) in message else f"{src}: {message}")
        if len(jobs_list) > 1:
            click.echo(f"failed: {failures[-1]}", err=True)

    readable, total = [], 0
    for job in jobs_list:
        try:
            with open_audio(job[0]) as f:
                total += f.frames
            readable.append(job)
        except USER_ERRORS as e:
            failed(job[0], e)

    def attempt(job):
        try:
            return job[0], *work(job, bar.update)
        except USER_ERRORS as e:
            failed(job[0], e)
            return job[0], [], None

    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for src, written, track in pool.map(attempt, readable):
                if track is None:
                    continue
                if as_json:
                    click.echo(json.dumps({"input": str(src), "outputs": [str(p) for p in written], **track.summary()}))
                    continue
                for path in written:
                    click.echo(str(path))
                if not quiet:
                    click.echo(format_summary(src, track.summary()))
    if len(jobs_list) == 1 and failures:
        raise click.ClickException(failures[0])
    if failures:
        raise click.ClickException(f"{len(failures)} of {len(jobs_list)} files failed (each named above)")


@main.command("labels")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--format", "formats", multiple=True, required=True, help="Label format (repeatable).")
@click.option("-o", "--output", default=None,
              help="Output file (one input, one format) or folder (default: beside each input).")
@click.option("--preset", default="balanced", show_default=True, help="Preset name or folder.")
@click.option("--jobs", type=click.IntRange(1, 64), default=1, show_default=True, help="Files processed in parallel.")
@vad_options
@report_options
@fail_cleanly
def labels(inputs, formats, output, preset, jobs, quiet, as_json, **vad):
    """Write properties of audio files or folders as labels or markers, without writing audio.

    Labels go beside each input, or into the output folder under the input's path relative
    to the folder named.
    """
    from .effect import DynCPEnhancer
    from .export import check_format, export, label_path
    from .files import stream_file

    for fmt in formats:
        check_format(fmt)
    pairs = collect_inputs(inputs)
    out = None if output is None else Path(output)
    single = out is not None and len(pairs) == 1 and len(formats) == 1 and not out.is_dir() and bool(out.suffix)

    def destinations(src: Path, rel: Path) -> list[Path]:
        if single:
            return [out]
        return [label_path(src if out is None else out / rel, fmt) for fmt in formats]

    jobs_list = [(src, destinations(src, rel)) for src, rel in pairs]
    inputs_resolved = {src.resolve() for src, _ in pairs}
    for _, dsts in jobs_list:
        for dst in dsts:
            if dst.resolve() in inputs_resolved:
                raise ValueError(f"label output {dst} would overwrite an input; name an output folder with -o")
    DynCPEnhancer.from_preset(preset, **vad)  # fail early on a bad preset or setting

    def label_one(job, progress):
        src, dsts = job
        fx = DynCPEnhancer.from_preset(preset, **vad)
        stream_file(src, fx, None, progress)
        for fmt, dst in zip(formats, dsts):
            make_folder(dst.parent)
            export(fx.properties, dst, fmt, audio_path=src)
        return dsts, fx.properties

    run_jobs(jobs_list, label_one, jobs, "labelling", quiet, as_json)


@main.command("presets")
@click.option("--json", "as_json", is_flag=True)
@fail_cleanly
def list_presets(as_json):
    """List the shipped presets with their test-split metrics."""
    rows = {}
    for name in preset_store.available():
        folder = preset_store.resolve(name)
        metrics_file = folder / "metrics.json"
        rows[name] = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for name, sets in rows.items():
        scores = "  ".join(f"{key} test PESQ-WB {m['enhanced']['pesq']:.2f}" for key, m in sets.items())
        any_set = next(iter(sets.values()), {})
        click.echo(f"{name:10s} {scores}  usage {any_set.get('usage', float('nan')):.2f}"
                   f"  MAC/frame {any_set.get('macs_gated', float('nan')):,.0f}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report.")
@click.option("--out", "out_dir", default=None, help="Also write report.json, report.md (and peers.png) here.")
@click.option("--seconds", type=float, default=60.0, show_default=True, help="Test-split audio to time on.")
@click.option("--peers", is_flag=True, help="Also compare with DeepFilterNet3, silero-vad, webrtcvad and pyworld.")
@click.option("--limit", type=int, default=None, help="With --peers: only the first N test mixtures.")
@click.option("--data-root", "--data", "data_root", default=None,
              help="The pack or the corpus (default ../shared/data); the corpus is compared on its own fixed set.")
@click.option("--long-minutes", type=click.FloatRange(min=0), multiple=True, default=(1, 10, 60), show_default=True,
              help="Lengths of the files for the long-file memory bench of `enhance` (repeatable; 0 skips it).")
@fail_cleanly
def bench(as_json, out_dir, seconds, peers, limit, data_root, long_minutes):
    """Cost and speed of the presets on test-split mixtures, one thread; --peers adds the comparison."""
    from .bench import markdown, peer_markdown, run_bench, run_peer_comparison
    from .export.common import write_text_atomic

    long_minutes = tuple(m for m in long_minutes if m > 0)
    report = {"engine": run_bench(seconds=seconds, data_root=data_root, long_minutes=long_minutes)}
    text = markdown(report["engine"])
    if peers:
        report["peers"] = run_peer_comparison(limit=limit, data_root=data_root)
        text += "\n" + peer_markdown(report["peers"])
    if out_dir:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        write_text_atomic(Path(out_dir) / "report.json", json.dumps(report, indent=2) + "\n")
        write_text_atomic(Path(out_dir) / "report.md", text)
        if peers:
            from .plots import peer_figure

            peer_figure(report["peers"], Path(out_dir) / "peers.png")
    click.echo(json.dumps(report, indent=2) if as_json else text)


@main.command()
@click.option("--preset", default="balanced", show_default=True)
@click.option("--split", type=click.Choice(["valid", "test"]), default="test", show_default=True)
@click.option("--limit", type=int, default=None, help="Score only the first N mixtures.")
@click.option("--data-root", "--data", "data_root", default=None,
              help="The pack or the corpus (default ../shared/data); the corpus is scored on its own fixed set.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--save", is_flag=True, help="Store the test-split report in the preset's metrics.json, under its set.")
@fail_cleanly
def evaluate(preset, split, limit, data_root, as_json, save):
    """Score a preset on the fixed set of a split: quality (with DNSMOS), cost and the six properties."""
    from .evaluate import evaluate_preset, markdown

    report = evaluate_preset(preset, split=split, limit=limit, data_root=data_root)
    if save:
        if limit is not None:
            raise ValueError("--save stores whole test sets; drop --limit")
        preset_store.write_metrics(preset_store.resolve(preset), report)
    click.echo(json.dumps(report, indent=2) if as_json else markdown(report))


@main.command()
@click.argument("inputs", nargs=-1)
@click.option("--preset", default="balanced", show_default=True, help="Preset name or folder.")
@click.option("-o", "--out", "out", default=None,
              help="PNG file (one input) or folder; default: beside each input. Without inputs: the figures' folder.")
@click.option("--data", "data_root", default=None, help="Without inputs: the data pack (default ../shared/data).")
@click.option("--noise-threshold", type=click.FloatRange(0, 1), default=None,
              help="Probability a noise class needs before it is drawn (else 'unknown').")
@fail_cleanly
def plot(inputs, preset, out, data_root, noise_threshold):
    """Draw audio files: spectrogram before and after, speech, F0, SNR and noise class over time.

    Without files, draw the paper's figures for the preset on the data's test split.
    """
    from .plots import file_figure, make_figures

    if not inputs:
        for path in make_figures(preset, Path(out or "figures"), data_root=data_root):
            click.echo(str(path))
        return
    pairs = collect_inputs(inputs)
    single = out is not None and len(pairs) == 1 and out.lower().endswith(".png")
    for src, rel in pairs:
        dst = Path(out) if single else (src if out is None else Path(out) / rel).with_suffix(".freelunch.png")
        make_folder(dst.parent)
        click.echo(str(file_figure(src, dst, preset, noise_threshold=noise_threshold)))
