"""The README is executable: every ```console example runs as printed, in order, in
one shell, against a fresh server on PostgreSQL, and prints what the README shows
(times and cursors aside, which change with every run).

`python -m tests.e2e.test_readme` prints what each example answers today, for
updating the README after a deliberate change."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.postgres import server_url
from tests.servers import ServerProcess, fresh_server

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
# Run in this order, in one shell: docs/api.md's examples go on from the README's.
DOCUMENTS = (README, ROOT / "docs" / "api.md")
PRINTED_ADDRESS = "localhost:8080"
MARK = "@@readme-example@@"
VARIABLE = [
    (re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z"), "<time>"),
    (re.compile(r'"next_cursor":"[A-Za-z0-9_-]+"'), '"next_cursor":"<cursor>"'),
]


@dataclass
class Example:
    line: int
    command: str
    expected: list[str] = field(default_factory=list)
    document: str = "README.md"


def all_examples() -> list[Example]:
    return [
        example
        for path in DOCUMENTS
        for example in console_examples(path.read_text(), path.relative_to(ROOT).as_posix())
    ]


def console_examples(text: str, document: str = "README.md") -> list[Example]:
    """`$ command` lines of ```console blocks, each with the lines printed under it."""
    examples: list[Example] = []
    in_block = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            in_block = line.strip() == "```console"
        elif in_block and line.startswith("$ "):
            examples.append(Example(number, line[2:], document=document))
        elif in_block and examples and examples[-1].line < number:
            examples[-1].expected.append(line)
    return examples


def normalized(text: str) -> str:
    text = text.replace("\r\n", "\n").strip()
    for pattern, placeholder in VARIABLE:
        text = pattern.sub(placeholder, text)
    return text


def run_in_one_shell(examples: list[Example], server: ServerProcess) -> list[str]:
    """Each example's standard output; shell variables carry from one to the next."""
    address = f"127.0.0.1:{server.port}"
    script = "".join(
        f"printf '\\n{MARK}\\n'\n{example.command.replace(PRINTED_ADDRESS, address)}\n"
        for example in examples
    )
    env = {
        **os.environ,
        "DATABASE_URL": server.database_url,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    outputs = done.stdout.split(f"\n{MARK}\n")[1:]
    assert len(outputs) == len(examples), done.stdout + done.stderr
    return outputs


def test_every_readme_example_answers_as_printed(pg_server: str) -> None:
    examples = all_examples()
    assert len(examples) >= 25
    assert len([e for e in examples if e.document == "README.md"]) >= 10
    with fresh_server(pg_server) as server:
        outputs = run_in_one_shell(examples, server)
    for example, output in zip(examples, outputs, strict=True):
        expected = normalized("\n".join(example.expected))
        where = f"{example.document} line {example.line}"
        assert normalized(output) == expected, f"{where}: {example.command}"


def test_examples_are_found_with_their_output() -> None:
    text = "\n".join(
        [
            "```console",
            "$ curl -s localhost:8080/a",
            '{"x":1}',
            "",
            "$ echo 2",
            "2",
            "```",
            "$ not an example",
            "```sh",
            "$ neither",
            "```",
        ]
    )
    found = console_examples(text)
    assert [(e.command, e.expected) for e in found] == [
        ("curl -s localhost:8080/a", ['{"x":1}', ""]),
        ("echo 2", ["2"]),
    ]
    assert normalized('{"created_at":"2026-11-23T21:13:19.186093Z"}\r\n') == (
        '{"created_at":"<time>"}'
    )


if __name__ == "__main__":
    with server_url() as pg:
        examples = all_examples()
        with fresh_server(pg) as running:
            for example, output in zip(examples, run_in_one_shell(examples, running), strict=True):
                print(f"$ {example.command}\n{output.strip()}\n")
