"""README's Kubernetes commands, as the tests that check them read them."""

from __future__ import annotations

from core.settings import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
KUBERNETES_SECTION = README[README.index("## Kubernetes") :]


def tear_down_commands() -> list[str]:
    """The commands of README's "Tear down" block, comments dropped."""
    block = KUBERNETES_SECTION.split("### Tear down", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    lines = (line.split("#", 1)[0].strip() for line in block.strip().splitlines())
    return [line for line in lines if line]
