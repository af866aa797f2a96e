"""The interactive prompt of ``seq2seq translate`` (a terminal on stdin, nothing to
translate on the command line).

Each line typed is translated and printed; lines starting with ``:`` are commands
that change the decoding settings for the next lines. The streams are arguments, so
tests drive the prompt with ``io.StringIO``; on a real terminal ``input()`` is used,
with ``readline`` editing and a history file when the module is available.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from seq2seq.inference import TranslationWriter, Translator
from seq2seq.progress import is_terminal

HISTORY_FILE = Path("~/.seq2seq_history")
HISTORY_LENGTH = 1000
PROMPT = "> "

HELP = """\
type a sentence to translate it; commands:
  :beam N            beam size (1: greedy search)
  :alpha A           beam search length penalty
  :nbest K           show the K best translations (K <= beam size)
  :scores on|off     show the score of each translation
  :attention on|off  show the attention under each translation
  :help              this text
  :quit              leave (so does Ctrl-D)"""


class Repl:
    """Read-translate-print loop over ``stdin`` / ``stdout``.

    ``writer`` formats the translations (its stream should be ``stdout``);
    ``history`` is the readline history file, used only on a terminal.
    """

    def __init__(
        self,
        translator: Translator,
        writer: TranslationWriter,
        stdin: TextIO,
        stdout: TextIO,
        history: Path | None = HISTORY_FILE,
    ) -> None:
        self.translator = translator
        self.writer = writer
        self.stdin = stdin
        self.stdout = stdout
        self.history = history.expanduser() if history is not None else None
        self.readline = _readline() if _is_terminal(stdin, stdout) else None

    def run(self) -> int:
        """Loop until ``:quit`` or end of input; returns the exit status (0)."""
        self.say(f"{self.settings()}; :help lists the commands, Ctrl-D quits")
        self._load_history()
        try:
            while True:
                try:
                    line = self.read()
                except EOFError:
                    if self.readline is not None:
                        self.say("")  # end the prompt's line
                    break
                except KeyboardInterrupt:  # Ctrl-C drops the line being typed
                    self.say("")
                    continue
                line = line.strip()
                if not line:
                    continue
                if line.startswith(":"):
                    if not self.command(line):
                        break
                    continue
                try:
                    self.translate(line)
                except KeyboardInterrupt:
                    self.say("interrupted")
        finally:
            self._save_history()
        return 0

    def read(self) -> str:
        """One input line (without newline); raises EOFError at the end."""
        if self.readline is not None:
            return input(PROMPT)
        self.stdout.write(PROMPT)
        self.stdout.flush()
        line = self.stdin.readline()
        if not line:
            raise EOFError
        return line.rstrip("\r\n")

    def translate(self, line: str) -> None:
        """Translate one line and print it with the current settings."""
        translations = self.translator.translate_lines(
            [line], return_attention=self.writer.needs_attention
        )
        self.writer.write(translations[0])
        self.stdout.flush()

    def command(self, line: str) -> bool:
        """Run a ``:command``; False when the loop should end. Bad commands print
        one line and change nothing."""
        name, _, value = line.partition(" ")
        value = value.strip()
        if name in (":quit", ":q", ":exit"):
            return False
        if name == ":help":
            self.say(HELP)
            self.say(f"now: {self.settings()}")
        elif name == ":beam":
            self._set_beam(value)
        elif name == ":alpha":
            self._set_alpha(value)
        elif name == ":nbest":
            self._set_nbest(value)
        elif name in (":scores", ":attention"):
            if value not in ("on", "off"):
                self.say(f"{name} {value}: say on or off")
            else:
                setattr(self.writer, f"show_{name[1:]}", value == "on")
                self.say(f"{name[1:]} {value}")
        else:
            self.say(f"unknown command {name}; :help lists the commands")
        return True

    def settings(self) -> str:
        """The current decoding settings, as one line."""
        t = self.translator
        scores = "on" if self.writer.show_scores else "off"
        attention = "on" if self.writer.show_attention else "off"
        settings = (f"beam {t.beam_size}", f"alpha {t.alpha:g}", f"nbest {t.n_best}")
        return ", ".join((*settings, f"scores {scores}", f"attention {attention}"))

    def say(self, message: str) -> None:
        self.stdout.write(message + "\n")
        self.stdout.flush()

    def _set_beam(self, value: str) -> None:
        beam = _parse(value, int)
        if beam is None or beam < 1:
            self.say(f":beam {value}: give a whole number >= 1")
        elif beam < self.translator.n_best:
            self.say(
                f":beam {beam} is smaller than :nbest {self.translator.n_best}; "
                "lower :nbest first"
            )
        else:
            self.translator.beam_size = beam
            self.say(f"beam {beam}")

    def _set_alpha(self, value: str) -> None:
        alpha = _parse(value, float)
        if alpha is None or alpha < 0:
            self.say(f":alpha {value}: give a number >= 0")
        else:
            self.translator.alpha = alpha
            self.say(f"alpha {alpha:g}")

    def _set_nbest(self, value: str) -> None:
        n_best = _parse(value, int)
        if n_best is None or n_best < 1:
            self.say(f":nbest {value}: give a whole number >= 1")
        elif n_best > self.translator.beam_size:
            self.say(
                f":nbest {n_best} is larger than :beam {self.translator.beam_size}; "
                "raise :beam first"
            )
        else:
            self.translator.n_best = n_best
            self.say(f"nbest {n_best}")

    def _load_history(self) -> None:
        if self.readline is None or self.history is None:
            return
        self.readline.set_history_length(HISTORY_LENGTH)
        try:
            self.readline.read_history_file(self.history)
        except OSError:
            pass  # no history yet, or unreadable: start without

    def _save_history(self) -> None:
        if self.readline is None or self.history is None:
            return
        try:
            self.readline.write_history_file(self.history)
        except OSError:
            pass  # a read-only home must not break the prompt


def run_repl(
    translator: Translator,
    writer: TranslationWriter,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    history: Path | None = HISTORY_FILE,
) -> int:
    """Run the prompt on the given streams (default: the process's own)."""
    return Repl(
        translator, writer, stdin or sys.stdin, stdout or sys.stdout, history
    ).run()


def _parse(value: str, kind: type) -> int | float | None:
    try:
        return kind(value)
    except ValueError:
        return None


def _is_terminal(stdin: TextIO, stdout: TextIO) -> bool:
    """``input()`` reads sys.stdin and writes the prompt to sys.stdout: use it only
    when those are the streams, and stdin is a terminal."""
    if stdin is not sys.stdin or stdout is not sys.stdout:
        return False
    return is_terminal(stdin)


def _readline():  # -> the readline module, or None where it is missing (Windows)
    try:
        import readline
    except ImportError:
        return None
    return readline
