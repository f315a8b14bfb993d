"""The ``gradtrace`` command line.

    gradtrace demo [moons|toy] [--steps N] [--seed S] [--serve]   train and record a demo
    gradtrace runs [--experiment E]                               list the runs
    gradtrace show RUN                                            one run in detail
    gradtrace why RUN                                             where its first NaN/inf came from
    gradtrace export RUN --format parquet|csv --out DIR           a run's tables as files
    gradtrace diff A B [--rtol R] [--atol A]                      where two runs part
    gradtrace verify RUN                                          re-compute a recording
    gradtrace db upgrade | db check                               schema migrations
    gradtrace dashboard [--host 127.0.0.1] [--port 8050]          the browser dashboard

Every command takes ``--db`` (a path or SQLAlchemy URL; default ``$GRADTRACE_DB``
or ``./gradtrace.db``). RUN is an id, a unique id prefix, a name or a name prefix;
a name several runs share means the most recent of them (a note on stderr says so).
Errors the user can fix print one line, ``gradtrace: error: ...``, and exit 1;
usage errors exit 2; set GRADTRACE_DEBUG=1 to see the traceback instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from gradtrace.cli.text import terminal_safe
from gradtrace.tracer.errors import GradtraceError

DEMO_STEPS = {"moons": 100, "toy": 50}


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors a user can act on. SQLAlchemy is imported here, not at start-up,
    so `gradtrace --version` and `--help` stay quick."""
    from sqlalchemy.exc import SQLAlchemyError

    return (GradtraceError, SQLAlchemyError, OSError)


def echo(text: str, err: bool = False) -> None:
    """Print, every terminal control code in user text (names, config, notes, errors)
    escaped: a shared database must not be able to drive the reader's terminal."""
    click.echo(terminal_safe(str(text)), err=err)


def one_line(e: BaseException) -> str:
    """The error as one line: a driver error's own message, whitespace collapsed."""
    from sqlalchemy.exc import DBAPIError

    if isinstance(e, DBAPIError) and e.orig is not None:
        text = str(e.orig).strip().splitlines()[0] if str(e.orig).strip() else type(e.orig).__name__
        return f"database error: {text}"
    text = " ".join(str(e).split())
    if isinstance(e, OSError) and e.filename is not None and e.strerror:
        text = f"{e.strerror}: {e.filename}"
    return text or type(e).__name__


class Gradtrace(click.Group):
    """The top-level group: turns user errors into one line and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            echo("gradtrace: interrupted", err=True)
            ctx.exit(130)
        except BrokenPipeError:
            # `gradtrace runs | head`: the reader left; say nothing more.
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - flushed at exit, never read
            ctx.exit(1)
        except Exception as e:
            if not isinstance(e, user_errors()) or os.environ.get("GRADTRACE_DEBUG"):
                raise
            echo(f"gradtrace: error: {one_line(e)}", err=True)
            ctx.exit(1)


def db_option(f: Callable) -> Callable:
    return click.option(
        "--db",
        envvar="GRADTRACE_DB",
        metavar="URL",
        help="Database path or SQLAlchemy URL [env GRADTRACE_DB; default ./gradtrace.db].",
    )(f)


def host_port(f: Callable) -> Callable:
    f = click.option(
        "--port",
        type=click.IntRange(1, 65535),
        default=8050,
        show_default=True,
        help="Dashboard port.",
    )(f)
    return click.option(
        "--host",
        default="127.0.0.1",
        show_default=True,
        help="Dashboard address (0.0.0.0 for every interface).",
    )(f)


def dashboard_serve() -> Callable[..., Any]:
    """``dashboard.serve``, imported only when needed (Dash is slow to import)."""
    try:
        from gradtrace.dashboard import serve
    except ImportError as e:
        raise GradtraceError(
            f"the dashboard is not available ({e}); reinstall gradtrace: pip install gradtrace"
        ) from None
    return serve


def open_store(db: str | None):
    from gradtrace import tracer

    return tracer.connect(db, readonly=True)


def find_run(store, ref: str):
    """``store.run(ref)``, saying on stderr when a name picked the newest of several runs."""
    view = store.run(ref)
    if view.note:
        echo(f"gradtrace: note: {view.note}", err=True)
    return view


@click.group(cls=Gradtrace, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gradtrace", prog_name="gradtrace")
def cli() -> None:
    """gradtrace: every value, gradient and update of a training run, in SQL."""


@cli.command()
@click.argument("kind", type=click.Choice(sorted(DEMO_STEPS)), default="moons", required=False)
@click.option(
    "--steps", type=click.IntRange(min=1), help="Training steps [default: moons 100, toy 50]."
)
@db_option
@click.option("--seed", type=int, default=1337, show_default=True, help="Data and weight seed.")
@click.option("--name", help="Run name [default: the demo's name].")
@click.option(
    "--capture",
    type=click.Choice(["nodes", "params"]),
    default="nodes",
    show_default=True,
    help="Trace every node, or parameters and metrics only.",
)
@click.option("--serve", is_flag=True, help="Open the dashboard on the new run afterwards.")
@host_port
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar with the live loss [default: on a terminal].",
)
def demo(
    kind: str,
    steps: int | None,
    db: str | None,
    seed: int,
    name: str | None,
    capture: str,
    serve: bool,
    host: str,
    port: int,
    progress: bool | None,
) -> None:
    """Train a demo network (moons or toy) and record every step.

    Prints the new run's id on stdout; the progress bar goes to stderr.
    """
    from tqdm import tqdm

    from gradtrace.tracer import admin
    from gradtrace.tracer.report import demo

    serve_fn = dashboard_serve() if serve else None  # fail before training, not after
    steps = steps or DEMO_STEPS[kind]
    last: dict[str, float] = {}
    bar = tqdm(
        total=steps,
        desc=f"{kind}",
        unit="step",
        file=sys.stderr,
        dynamic_ncols=True,
        disable=None if progress is None else not progress,
    )
    with bar:

        def on_step(k: int, loss: float, acc: float) -> None:
            last.update(loss=loss, acc=acc)
            bar.set_postfix(loss=f"{loss:.4g}", acc=f"{acc:.0%}", refresh=False)
            bar.update(1)

        run_id = demo.train(
            kind, steps, db, seed=seed, name=name, progress=on_step, capture=capture
        )
    where = admin.where(db)
    echo(
        f"recorded {name or kind!r}: {steps} steps, final loss {last['loss']:.6g}, "
        f"acc {last['acc']:.0%}, into {where}; `gradtrace show {run_id[:8]}` for details",
        err=True,
    )
    echo(run_id)
    if serve_fn is not None:
        serve_fn(db=db, host=host, port=port, open_run=run_id)


@cli.command()
@db_option
@click.option("--experiment", "-e", help="Only runs of this experiment.")
def runs(db: str | None, experiment: str | None) -> None:
    """List the runs, newest first: status, duration, steps, final loss and acc."""
    from gradtrace.cli.format import runs_table

    with open_store(db) as store:
        df = store.runs(experiment)
        if df.empty:
            scope = f" of experiment {experiment!r}" if experiment is not None else ""
            echo(f"no runs{scope} in {store.where}")
            return
        echo(runs_table(df))


@cli.command()
@click.argument("run")
@db_option
def show(run: str, db: str | None) -> None:
    """One run: status, config, model, final metrics, the largest gradients at the last
    step and the first NaN/inf."""
    from gradtrace.cli import format as cli_format

    with open_store(db) as store:
        echo(cli_format.show(find_run(store, run)))


@cli.command()
@click.argument("run")
@db_option
def why(run: str, db: str | None) -> None:
    """Where the run's first NaN/inf came from: the step, the kind (forward, backward,
    update, metric), the node and its op, its inputs and the parameters involved."""
    from gradtrace.cli import format as cli_format

    with open_store(db) as store:
        echo(cli_format.why(find_run(store, run)))


@cli.command()
@click.argument("run")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "parquet"]),
    default="csv",
    show_default=True,
    help="File format.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write into (created; files of the same name are replaced) "
    "[default: ./<name>-<id prefix>].",
)
@db_option
def export(run: str, fmt: str, out: Path | None, db: str | None) -> None:
    """Write a run's tables (metrics, parameters, steps, updates, graphs, nodes) as files."""
    from gradtrace.tracer.report import check_format, default_folder

    check_format(fmt)
    with open_store(db) as store:
        view = find_run(store, run)
        folder = out or default_folder(view.name, view.id)
        files = view.export(folder, fmt)
    for path in files:
        echo(f"{path}  ({path.stat().st_size:,} bytes)")


@cli.command()
@click.argument("a")
@click.argument("b")
@click.option("--rtol", type=click.FloatRange(min=0), default=0.0, help="Relative tolerance.")
@click.option("--atol", type=click.FloatRange(min=0), default=0.0, help="Absolute tolerance.")
@db_option
def diff(a: str, b: str, rtol: float, atol: float, db: str | None) -> None:
    """Where runs A and B part: settings, graph shapes, the first step whose parameters
    differ (and the update before it), the first differing node, metrics side by side.
    Bit-exact unless --rtol/--atol are given."""
    from gradtrace.cli.compare import diff_report
    from gradtrace.tracer.report import diff_runs

    with open_store(db) as store:
        result = diff_runs(find_run(store, a), find_run(store, b), rtol=rtol, atol=atol)
    echo(diff_report(result))


@cli.command()
@click.argument("run")
@db_option
def verify(run: str, db: str | None) -> None:
    """Re-compute every traced step (values and gradients) and every SGD update of RUN
    with the engine, bit for bit; exit 1 at the first mismatch."""
    from gradtrace.cli.compare import verify_report

    with open_store(db) as store:
        result = find_run(store, run).verify()
    echo(verify_report(result))
    if not result.ok:
        sys.exit(1)


@cli.group("db")
def db_group() -> None:
    """The database schema: apply migrations, check the revision."""


@db_group.command("upgrade")
@db_option
def db_upgrade(db: str | None) -> None:
    """Create the schema or apply pending migrations; print the revision."""
    from gradtrace.tracer import admin

    echo(admin.upgrade(db))


@db_group.command("check")
@db_option
def db_check(db: str | None) -> None:
    """Report the current and head revisions; exit 1 if behind or if the schema
    differs from the models (alembic check). Never writes."""
    from gradtrace.tracer import admin

    report = admin.check(db)
    echo("\n".join(report.lines))
    if report.problem:
        raise GradtraceError(report.problem)


@cli.command()
@db_option
@host_port
@click.option("--debug", is_flag=True, help="Dash debug mode (reloads on code changes).")
def dashboard(db: str | None, host: str, port: int, debug: bool) -> None:
    """Serve the dashboard (read-only) at http://HOST:PORT."""
    dashboard_serve()(db=db, host=host, port=port, debug=debug)


def main(argv: list[str] | None = None) -> None:
    """The console script ``gradtrace``."""
    cli.main(args=argv, prog_name="gradtrace")


if __name__ == "__main__":
    main()
