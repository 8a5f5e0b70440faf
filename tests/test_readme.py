"""The README's commands are the ones CI runs."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    command = ci[-1].strip()
    assert command.startswith("pip install") and "pytest" in command
    assert command in (ROOT / "README.md").read_text()
