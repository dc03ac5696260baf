"""The command line as documented: `--version`, `--help` with examples on
every subcommand, every `keras-resnets ...` command of the README accepted,
and the README's model table equal to `keras-resnets models --format markdown`."""

import argparse
import pathlib
import re
import shlex

import pytest

import keras_resnets
from keras_resnets.cli import build_parser, main

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
TABLE_MARKER = "<!-- keras-resnets models --format markdown -->"
_OPERATORS = set("();<>|&")


def shell_commands(text):
    """The argument lists of the `keras-resnets` commands in shell text:
    continuation lines joined, comments and redirections dropped, `a && b`
    split."""
    for line in text.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        command = []
        for token in [*lexer, ";"]:
            if set(token) <= _OPERATORS:
                if command[:1] == ["keras-resnets"]:
                    yield command[1:]
                command = []
            else:
                command.append(token)


def readme_shell_blocks():
    blocks = re.findall(r"^```(\w*)\n(.*?)^```", README.read_text(), re.M | re.S)
    return [body for lang, body in blocks if lang in ("", "bash", "sh", "shell", "console")]


def subcommands():
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def rejection(argv):
    """None if `keras-resnets ARGV` parses and names registered models;
    otherwise why not."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return None if e.code == 0 else "rejected by the parser"
    if args.command is None:
        return "no subcommand"
    for value in (getattr(args, "model", None) if args.command == "train" else None,
                  getattr(args, "name", None) if args.command == "info" else None):
        if value is not None:
            try:
                keras_resnets.get_spec(value)
            except ValueError as e:
                return str(e)[:80]
    return None


def test_shell_commands_parsing():
    text = (
        "pip install . && keras-resnets train   # comment\n"
        "keras-resnets models --format json > models.json\n"
        "keras-resnets train --model resnet56 \\\n    --epochs 3\n"
        "python -m pytest\n"
    )
    assert list(shell_commands(text)) == [
        ["train"], ["models", "--format", "json"], ["train", "--model", "resnet56", "--epochs", "3"],
    ]


def test_every_readme_command_is_accepted(capsys):
    commands = [argv for block in readme_shell_blocks() for argv in shell_commands(block)]
    assert {"train", "models", "info"} <= {argv[0] for argv in commands if argv}
    bad = {shlex.join(argv): why for argv in commands if (why := rejection(argv))}
    capsys.readouterr()
    assert bad == {}, "README commands that keras-resnets does not accept"


def test_every_subcommand_has_help_with_examples(capsys):
    choices = subcommands()
    assert {"models", "info", "train"} <= set(choices)
    problems = {}
    for name, sub in choices.items():
        text = sub.format_help()
        examples = [argv for argv in shell_commands(text.split("examples:")[-1]) if argv[:1] == [name]]
        if "examples:" not in text or not examples:
            problems[name] = "no examples in --help"
            continue
        bad = {shlex.join(argv): why for argv in examples if (why := rejection(argv))}
        if bad:
            problems[name] = bad
    top = [argv for argv in shell_commands(build_parser().format_help().split("examples:")[-1])]
    assert {"models", "info", "train"} <= {argv[0] for argv in top}
    problems.update({shlex.join(argv): why for argv in top if (why := rejection(argv))})
    capsys.readouterr()
    assert problems == {}
    with pytest.raises(SystemExit) as exit_info:
        main(["info", "--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    usage = " ".join(out.split("\n\n")[0].split())
    assert usage == ("usage: keras-resnets info [-h] [--image-size IMAGE_SIZE] [--output-stride STRIDE] "
                     "[--plot FILE.png] name")
    assert "keras-resnets info resnext50_32x4d --plot resnext50.png" in out


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"keras-resnets {keras_resnets.__version__}\n"


def test_readme_model_table_is_generated(capsys):
    lines = README.read_text().splitlines()
    start = lines.index(TABLE_MARKER) + 1
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("|"))
    assert main(["models", "--format", "markdown"]) == 0
    generated = capsys.readouterr().out.strip().splitlines()
    assert len(generated) == 2 + len(keras_resnets.list_models())
    assert lines[start:end] == generated, (
        "README's model table is stale: regenerate it with keras-resnets models --format markdown"
    )
