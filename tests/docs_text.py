"""The documentation as the tests that check it read it: README's front page and docs/."""

from __future__ import annotations

from core.settings import REPO_ROOT

DOCS_DIR = REPO_ROOT / "docs"
README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
KUBERNETES_DOC = (DOCS_DIR / "kubernetes.md").read_text(encoding="utf-8")
OPERATIONS_DOC = (DOCS_DIR / "operations.md").read_text(encoding="utf-8")
# Every Kubernetes command a user is told to type: the front page's and the Kubernetes page's.
KUBERNETES_COMMANDS_TEXT = README + "\n" + KUBERNETES_DOC


def tear_down_commands() -> list[str]:
    """The commands of docs/kubernetes.md's "Tear down" block, comments dropped."""
    block = KUBERNETES_DOC.split("## Tear down", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    lines = (line.split("#", 1)[0].strip() for line in block.strip().splitlines())
    return [line for line in lines if line]
