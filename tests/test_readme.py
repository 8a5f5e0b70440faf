"""The README's commands are the ones CI runs."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    command = ci[-1].strip()
    assert command.startswith("pip install") and "pytest" in command
    assert command in (ROOT / "README.md").read_text()


def _block(heading: str, language: str) -> str:
    """The first fenced block of ``language`` after a README heading."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index(heading):]
    start = section.index(f"```{language}\n") + len(language) + 4
    return section[start:section.index("```", start)]


def test_readme_use_commands_run(tmp_path):
    """Every `codec` command of the README's "Use" block works as written (except `codec eval`,
    whose Kodak run takes minutes: tests/test_evaluation.py covers it on small data)."""
    import shlex
    import shutil
    import subprocess
    import sys

    for name in ("photo.png", "more.png"):
        shutil.copy(ROOT / "codec" / "data" / "astronaut.png", tmp_path / name)
    commands = [line.split("#")[0].strip() for line in _block("## Use", "bash").splitlines()]
    commands = [c for c in commands if c.startswith("codec ") and not c.startswith("codec eval")]
    assert len(commands) >= 5
    for command in commands:
        args = shlex.split(command)[1:]
        result = subprocess.run([sys.executable, "-m", "codec", *args], cwd=tmp_path, capture_output=True, text=True)
        assert result.returncode == 0, (command, result.stderr)


def test_readme_python_example_runs(tmp_path, monkeypatch):
    import shutil

    shutil.copy(ROOT / "codec" / "data" / "astronaut.png", tmp_path / "photo.png")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(_block("## Use", "python"), namespace)  # noqa: S102 - the README's own example
    assert namespace["image"].size == (512, 512)
