"""The README stays true: every `video3d ...` command it shows parses against the CLI as it is (commands,
options and values; files it names need not exist here)."""

import copy
import dataclasses
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from video3d.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_commands() -> list[tuple[str, bool]]:
    """(command, whole): the command lines of the README's code blocks are whole; a `video3d ...` in the text may
    be a fragment (a command with one option shown) that leaves out required arguments."""
    text = README.read_text()
    found = []
    for block in re.findall(r"```(?:bash|sh|console)?\n(.*?)```", text, re.S):
        found += [(ln, True) for ln in block.splitlines() if "video3d " in ln]
    found += [(span, False) for span in re.findall(r"`(video3d [^`]+)`", text)]
    commands = set()
    for line, whole in found:
        for part in re.split(r"&&|\|", line.split("  #")[0]):
            if part.strip().startswith("video3d "):
                commands.add((part.strip(), whole))
    return sorted(commands)


def parse(command: str):
    """Parse a command line the way `video3d` would, with the file checks off (the README's files are examples)."""
    group = typer.main.get_command(app)
    args = shlex.split(command)[1:]
    cmd, name = group, "video3d"
    while hasattr(cmd, "commands") and args and not args[0].startswith("-"):
        name, cmd = args[0], cmd.commands.get(args[0])
        assert cmd is not None, f"no command {name!r} in: {command}"
        args = args[1:]
    for p in cmd.params:  # this command object's own copies of the settings: the real CLI keeps its checks
        info = copy.copy(p.type_descriptor.parameter_info)
        info.exists = False
        p.type_descriptor = dataclasses.replace(p.type_descriptor, parameter_info=info)
        p._runtime_param = None
    return cmd.make_context(name, args)


COMMANDS = readme_commands()


def test_the_file_checks_are_off_only_for_the_readme_parse(tmp_path):
    parse(f"video3d reconstruct {tmp_path / 'absent.mp4'}")
    with pytest.raises(typer.TyperException, match="does not exist"):
        typer.main.get_command(app).commands["reconstruct"].make_context("reconstruct", [str(tmp_path / "absent.mp4")])


def test_the_readme_shows_commands():
    assert len(COMMANDS) >= 15, COMMANDS
    assert any(c.startswith("video3d reconstruct ") and whole for c, whole in COMMANDS)


@pytest.mark.parametrize("command, whole", COMMANDS)
def test_readme_command_parses(command, whole):
    if "..." in command or "<" in command:
        pytest.skip("a pattern, not a command")
    try:
        parse(command)
    except typer.Exit:  # --help, --version
        pass
    except typer.TyperException as exc:
        if not whole and type(exc).__name__ == "MissingParameter":
            return  # a fragment in the text
        pytest.fail(f"{command}: {exc.format_message()}")


@pytest.mark.parametrize("bad", ["video3d reconstruct x.mp4 --no-such-flag", "video3d reconstruct x.mp4 --smooth sharp",
                                 "video3d nosuchcommand x"])
def test_a_wrong_command_is_caught(bad):
    with pytest.raises((typer.TyperException, AssertionError)):
        parse(bad)


RUNNABLE = ("video3d reconstruct samples/", "video3d export video3d_output/", "video3d detect samples/")


@pytest.mark.slow
def test_the_readme_sample_commands_run_in_order(tmp_path, detector_path):
    """The README's commands on the sample, run as a user copying them top to bottom (in a temporary folder
    with the sample, the offline detector through $VIDEO3D_DETECTOR): each exits 0 and writes what it says."""
    text = README.read_text()
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            line = line.split("&& ", 1)[1] if line.startswith("pip install") and "&& video3d" in line else line
            if line.startswith(RUNNABLE):
                lines.append(line)
    assert len(lines) >= 6, lines
    shutil.copytree(README.parent / "samples", tmp_path / "samples")
    env = {**os.environ, "VIDEO3D_DETECTOR": str(detector_path)}
    bin_dir = Path(sys.executable).parent
    for line in lines:
        r = subprocess.run(line.replace("video3d ", f"{bin_dir / 'video3d'} "), shell=True, cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, (line, r.stderr[-2000:])
    for name in ("mannequin_walk_poses.npz", "mannequin_walk_3d.mp4", "mannequin_walk.json", "mannequin_walk.csv",
                 "mannequin_walk_1.bvh", "walk_zup_1.bvh"):
        assert (tmp_path / "video3d_output" / name).stat().st_size > 0, name
    assert (tmp_path / "walk_2d.npz").is_file()
