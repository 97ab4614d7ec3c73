"""TinyZero's Countdown reward (format 0.1, correct 1.0) in Python, for the peer bench.

The rule (TinyZero's verl/utils/reward_score/countdown.py, which src/tasks/countdown.cpp matches):
  1. The scored text is prompt + response, special tokens kept. Keep what follows the first
     "Assistant:" (else the first "<|im_start|>assistant"; else there is no answer: 0).
  2. Keep only its last line (split on "\\n") and take the last non-greedy <answer>(.*?)</answer>
     there (no DOTALL), stripped. None -> 0.
  3. The integers in it (regex \\d+ runs, Unicode digits included) sorted must equal the given numbers
     sorted, and it must match ^[\\d+\\-*/().\\s]+$ -> else format_score.
  4. Its value as Python computes it must be within 1e-5 of the target -> correct_score, else (or on
     any error) format_score.

TinyZero calls eval(); here the equation is parsed by Python's own parser (ast.parse, the grammar
eval() compiles) and the tree is walked with Python's own operators, so syntax and numbers follow
Python exactly, but nothing but + - * / // ** unary +/- and numeric literals is ever computed, and
ints are bounded like the C++ evaluator's (src/tasks/python_eval.h: 65536 bits; beyond that it is an
error, where Python would compute on for minutes and still score format_score).

`countdown_reward` is a TRL reward function (GRPOTrainer passes prompts, completions and the dataset
columns "target" and "nums"; if a tokenizer is bound with `make_trl_reward`, the completions are
re-decoded from their ids with special tokens kept, as the trainer scores them).
"""

from __future__ import annotations

import ast
import math
import operator
import re

FORMAT_SCORE = 0.1
CORRECT_SCORE = 1.0

MAX_LENGTH = 65536  # characters of an equation (python_eval.h PyEvalLimits::max_length)
MAX_INT_BITS = 65536  # bits of any int value (PyEvalLimits::max_int_bits)

_ANSWER = re.compile(r"<answer>(.*?)</answer>")
_DIGITS = re.compile(r"\d+")
_ALLOWED = re.compile(r"^[\d+\-*/().\s]+$")


def extract_equation(text: str) -> str | None:
    """The stripped content of the last <answer> on the last line after the assistant marker."""
    if "Assistant:" in text:
        text = text.split("Assistant:", 1)[1]
    elif "<|im_start|>assistant" in text:
        text = text.split("<|im_start|>assistant", 1)[1]
    else:
        return None
    line = text.split("\n")[-1]
    matches = list(_ANSWER.finditer(line))
    if not matches:
        return None
    return matches[-1].group(1).strip()


def _uses_numbers(equation: str, nums: list[int]) -> bool:
    try:
        used = sorted(int(run) for run in _DIGITS.findall(equation))
    except ValueError:  # a run over Python's 4300-digit int limit: TinyZero's except returns False
        return False
    return used == sorted(nums)


class _EvalError(Exception):
    pass


def _check_int(value):
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise _EvalError("int too large")
    return value


def _pow(a, b):
    # Only int ** non-negative int grows without bound; everything else is a float or complex op.
    if isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1:
        if b * math.log2(abs(a)) > MAX_INT_BITS + 1:
            raise _EvalError("int too large")
    return _check_int(operator.pow(a, b))


_BINARY = {
    ast.Add: lambda a, b: _check_int(a + b),
    ast.Sub: lambda a, b: _check_int(a - b),
    ast.Mult: lambda a, b: _check_int(a * b),
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Pow: _pow,
}


def _eval_tree(root):
    """Post-order walk without recursion (unary chains can nest thousands deep, as eval() allows)."""
    stack, values = [(root, False)], []
    while stack:
        node, expanded = stack.pop()
        if isinstance(node, ast.Expression):
            stack.append((node.body, False))
        elif isinstance(node, ast.Constant):
            # bool is excluded (True/False cannot pass the character check); Ellipsis ("...") errs
            if type(node.value) not in (int, float, complex):
                raise _EvalError("not a number")
            values.append(node.value)
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.USub, ast.UAdd)):
                raise _EvalError("operator")
            if expanded:
                value = values.pop()
                values.append(-value if isinstance(node.op, ast.USub) else +value)
            else:
                stack += [(node, True), (node.operand, False)]
        elif isinstance(node, ast.BinOp):
            op = _BINARY.get(type(node.op))
            if op is None:
                raise _EvalError("operator")
            if expanded:
                right = values.pop()
                left = values.pop()
                values.append(op(left, right))
            else:
                stack += [(node, True), (node.right, False), (node.left, False)]
        else:
            raise _EvalError(type(node).__name__)  # calls, tuples, names, ...
    return values[0]


def evaluate_equation(equation: str):
    """Python's value of the equation, or None where eval() would raise (or a bound is hit)."""
    if len(equation) > MAX_LENGTH or not _ALLOWED.match(equation):
        return None
    try:
        # eval() of a string skips leading spaces and tabs before compiling; the equation is stripped.
        tree = ast.parse(equation.lstrip(" \t"), mode="eval")
        return _eval_tree(tree)
    except (SyntaxError, ValueError, ArithmeticError, TypeError, RecursionError, MemoryError, _EvalError):
        return None


def score_countdown(text: str, target: int, nums: list[int], format_score: float = FORMAT_SCORE,
                    correct_score: float = CORRECT_SCORE) -> float:
    """TinyZero's score of prompt + response `text` for the problem (nums, target)."""
    equation = extract_equation(text)
    if equation is None:
        return 0.0
    if not _uses_numbers(equation, nums):
        return format_score
    value = evaluate_equation(equation)
    if value is None:
        return format_score
    try:
        close = abs(value - target) < 1e-5
    except (ArithmeticError, TypeError):
        return format_score
    return correct_score if close else format_score


def countdown_reward(prompts, completions, target, nums, **kwargs):
    """TRL reward function: one score per (prompt, completion), prompts and completions as strings."""
    return [score_countdown(p + c, t, n) for p, c, t, n in zip(prompts, completions, target, nums, strict=True)]


def make_trl_reward(tokenizer, record=None):
    """A TRL reward function that scores prompt + completion decoded with special tokens kept (as the
    C++ trainer does; TRL's own `completions` have them skipped). With `record` (a list), each call
    appends (scores, completion lengths) so the caller can log per-step statistics."""

    def countdown(prompts, completions, completion_ids, target, nums, **kwargs):
        texts = tokenizer.batch_decode(completion_ids, skip_special_tokens=False)
        scores = [score_countdown(p + c, t, n) for p, c, t, n in zip(prompts, texts, target, nums, strict=True)]
        if record is not None:
            record.append((scores, [len(ids) for ids in completion_ids]))
        return scores

    return countdown
