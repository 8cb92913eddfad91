"""``declarun render --format kubernetes [-o DIR]``: the stack as Kubernetes manifests.

Without ``-o`` (or with ``-o -``) the manifests go to standard output as one YAML stream,
secret values masked unless ``--reveal-secrets``; with ``-o DIR`` each manifest is a file of its own in DIR (made if needed; secrets
written with their values, readable by the owner only), ready for ``kubectl apply
--server-side -f DIR``. What Kubernetes cannot express is listed on standard error either
way, one line per field, and does not make the command fail.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from declarun.cli.output import stderr_console
from declarun.observe.swarm import host_files
from declarun.render.kubernetes import KUBERNETES_VERSION, kubernetes_manifests, manifest_file_name
from declarun.stack.model import Stack

__all__ = ["render_kubernetes"]


def render_kubernetes(stack: Stack, output: Path | None, *, reveal_secrets: bool = False) -> None:
    """Write ``stack``'s manifests (see the module docstring)."""
    manifests = kubernetes_manifests(
        stack, files=host_files(stack), reveal_secrets=reveal_secrets or output is not None
    )
    if output is None:
        click.echo(manifests.to_yaml(), nl=False)
    else:
        if output.exists() and not output.is_dir():
            raise click.UsageError(f"-o {output}: not a directory")
        output.mkdir(parents=True, exist_ok=True)
        for index, document in enumerate(manifests.documents, start=1):
            path = output / manifest_file_name(index, document)
            text = manifests.__class__((document,), ()).to_yaml()
            mode = 0o600 if document["kind"] == "Secret" else 0o644
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.chmod(path, mode)
    console = stderr_console()
    if output is not None:
        console.print(
            f"Wrote {len(manifests.documents)} manifests for Kubernetes {KUBERNETES_VERSION} to "
            f"{output} (kubectl apply --server-side -f {output}).",
            markup=False,
            highlight=False,
        )
    if manifests.notes:
        console.print(
            f"Not expressed in Kubernetes ({len(manifests.notes)}):", markup=False, style="yellow"
        )
        for note in manifests.notes:
            console.print(f"  {note}", markup=False, highlight=False)
