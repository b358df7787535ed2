"""The SAIL parser: finding modules without running code, support code, errors, digests."""

from __future__ import annotations

import textwrap

import pytest

from saibench_jupyter.sail._decorators import ModuleKind
from saibench_jupyter.sail._dryrun import ProblemRun, dry_run
from saibench_jupyter.sail._errors import SailSyntaxError
from saibench_jupyter.sail._parser import ParsedModule, ParsedSource, parse
from saibench_jupyter.sail._types import List, Scalar

ALL_KINDS = textwrap.dedent(
    '''
    import numpy as np
    from os import path as p
    raise RuntimeError("top-level code must not run during parsing")
    SCALE = 3
    a, (b, c) = 1, (2, 3)

    def helper(x):
        return x

    @ProblemDefinition
    def Digits(epochs=1):
        """Handwritten digits."""
        Train.Classify(Tensor(8, 8), Tensor(10))

    @ModelDefinition
    def MLP(task, inputType, outputType, hidden):
        return Linear(hidden)

    @MetricDefinition(axis="work", better="lower", unit="ms")
    def WallTime():
        return ElapsedMilliseconds()

    @ConverterDefinition
    def Embed(a: Atom) -> Tensor:
        return a

    @SoftwareDefinition
    def Torch(hardware):
        return Environment(backend="torch")

    @HardwareDefinition()
    def CPU():
        return Resources(cpus=1)

    @RankingDefinition
    def Faster(a, b):
        return a.WallTime < b.WallTime
    '''
)


def parse_src(src: str, origin: str = "cell") -> ParsedSource:
    return parse(textwrap.dedent(src), origin)


def parse_one(src: str, origin: str = "cell") -> ParsedModule:
    (module,) = parse_src(src, origin).modules
    return module


def syntax_error(src: str, origin: str = "cell") -> SailSyntaxError:
    with pytest.raises(SailSyntaxError) as info:
        parse_src(src, origin)
    return info.value


# -- finding modules ------------------------------------------------------------------
def test_finds_all_seven_kinds_without_running_top_level() -> None:
    parsed = parse(ALL_KINDS, "all.py")
    assert [(m.name, m.kind) for m in parsed.modules] == [
        ("Digits", ModuleKind.PROBLEM),
        ("MLP", ModuleKind.MODEL),
        ("WallTime", ModuleKind.METRIC),
        ("Embed", ModuleKind.CONVERTER),
        ("Torch", ModuleKind.SOFTWARE),
        ("CPU", ModuleKind.HARDWARE),
        ("Faster", ModuleKind.RANKING),
    ]


def test_decorator_options_are_kept() -> None:
    parsed = parse(ALL_KINDS, "all.py")
    metric = next(m for m in parsed.modules if m.name == "WallTime")
    assert dict(metric.options) == {"axis": "work", "better": "lower", "unit": "ms"}


def test_bare_and_empty_call_decorators_have_no_options() -> None:
    parsed = parse(ALL_KINDS, "all.py")
    by_name = {m.name: m for m in parsed.modules}
    assert dict(by_name["MLP"].options) == {}
    assert dict(by_name["CPU"].options) == {}


def test_module_records_origin_line_params_defaults_and_doc() -> None:
    parsed = parse(ALL_KINDS, "all.py")
    digits = parsed.modules[0]
    assert (digits.origin, digits.line, digits.end_line) == ("all.py", 12, 14)
    assert digits.params == ("epochs",)
    assert digits.defaults == frozenset({"epochs"})
    assert digits.doc == "Handwritten digits."


def test_module_source_starts_at_its_decorator() -> None:
    module = parse_one(
        """
        @HardwareDefinition
        def CPU():
            return Resources(cpus=1)
        """
    )
    assert module.source.splitlines() == [
        "@HardwareDefinition",
        "def CPU():",
        "    return Resources(cpus=1)",
    ]


def test_support_names_collect_imports_assignments_and_helpers() -> None:
    parsed = parse(ALL_KINDS, "all.py")
    assert parsed.support_names == frozenset({"np", "p", "SCALE", "a", "b", "c", "helper"})


def test_support_text_holds_the_non_module_code() -> None:
    parsed = parse(ALL_KINDS, "all.py")
    assert "def helper(x):" in parsed.support
    assert "@ProblemDefinition" not in parsed.support


def test_undecorated_functions_are_support_not_modules() -> None:
    parsed = parse_src(
        """
        def Digits():
            pass
        """
    )
    assert parsed.modules == ()
    assert parsed.support_names == frozenset({"Digits"})


def test_list_displays_become_sail_lists() -> None:
    # A plain Python list has no .TopK: this dry run only works after the rewrite.
    module = parse_one(
        """
        @ProblemDefinition
        def P():
            xs = [1, 2]
            Train.Classify(xs.TopK(1), xs)
        """
    )
    trace = dry_run(module, ProblemRun(module))
    assert trace.error is None
    assert trace.meta.records[0].types == (List(Scalar("int64"), 1), List(Scalar("int64"), 2))


def test_list_comprehensions_become_sail_lists() -> None:
    module = parse_one(
        """
        @ProblemDefinition
        def P():
            xs = [i * 2 for i in range(3)]
            Train.Classify(xs.TopK(1), xs)
        """
    )
    trace = dry_run(module, ProblemRun(module))
    assert trace.error is None
    assert trace.meta.records[0].types == (List(Scalar("int64"), 1), List(Scalar("int64"), 3))


# -- invalid Python -------------------------------------------------------------------
def test_arrow_character_gets_the_return_annotation_fix() -> None:
    err = syntax_error(
        """
        @ConverterDefinition
        def Embed(a: Atom) → Tensor:
            return a
        """
    )
    assert err.what == "invalid Python: invalid character '→' (U+2192)"
    assert err.location.line == 3
    assert err.fix == "write -> for a return annotation"


def test_dot_dot_range_gets_the_slice_fix() -> None:
    err = syntax_error(
        """
        @ProblemDefinition
        def P():
            chunk = data[0..3]
        """
    )
    assert err.what.startswith("invalid Python: ")
    assert err.location.line == 4
    assert err.fix == "Python has no a..b ranges: slice with a:b+1 or use range(a, b+1)"


def test_paper_style_zero_dot_dot_name_range_is_rejected_with_the_slice_fix() -> None:
    # `0..i` is valid Python ((0.).i): only the parser's own check can catch it.
    err = syntax_error(
        """
        @ProblemDefinition
        def P():
            chunks = Chunks(Input("dataset:digits/images"), 10)
            for i in range(10):
                current = sum(chunks[0..i])
        """
    )
    assert err.location.line == 6
    assert err.fix == "Python has no a..b ranges: slice with a:b+1 or use range(a, b+1)"


def test_assignment_in_an_if_gets_the_comparison_fix() -> None:
    err = syntax_error(
        """
        @ModelDefinition
        def MLP(task, inputType, outputType):
            if task = Classify:
                Fail("no")
        """
    )
    assert err.what.startswith("invalid Python: invalid syntax. Maybe you meant '=='")
    assert err.location.line == 4
    assert err.fix == "compare with ==, not ="


def test_other_syntax_errors_point_at_the_position() -> None:
    err = syntax_error(
        """
        @HardwareDefinition
        def CPU(:
            pass
        """
    )
    assert err.what == "invalid Python: invalid syntax"
    assert err.location.line == 3
    assert err.fix == "correct the Python syntax at the marked position"


def test_syntax_error_message_shows_the_bad_line() -> None:
    err = syntax_error(
        """
        @ModelDefinition
        def MLP(task, inputType, outputType):
            if task = Classify:
                Fail("no")
        """,
        origin="my-cell",
    )
    assert "in my-cell, line 4" in str(err)
    assert "4 | if task = Classify:" in str(err)


# -- misused decorators -------------------------------------------------------------------
def test_decorator_on_a_class_is_rejected() -> None:
    with pytest.raises(SailSyntaxError, match=r"^@ProblemDefinition decorates a class, Digits\n") as info:
        parse_src(
            """
            @ProblemDefinition
            class Digits:
                pass
            """
        )
    assert info.value.location.line == 2
    assert info.value.fix == "SAIL modules are plain functions (def, not class or async def)"


def test_two_module_decorators_are_rejected() -> None:
    with pytest.raises(
        SailSyntaxError, match=r"^P has two module decorators \(@ProblemDefinition and @ModelDefinition\)"
    ) as info:
        parse_src(
            """
            @ProblemDefinition
            @ModelDefinition
            def P(task, inputType, outputType):
                pass
            """
        )
    assert info.value.location.line == 2


def test_another_decorator_beside_a_sail_one_is_rejected() -> None:
    with pytest.raises(
        SailSyntaxError, match=r"^P has another decorator \(@cache\) beside @ProblemDefinition"
    ) as info:
        parse_src(
            """
            @functools.cache
            @ProblemDefinition
            def P():
                pass
            """
        )
    assert info.value.location.line == 3
    assert info.value.fix == "SAIL modules take no other decorators: move the logic into the body"


def test_unknown_option_lists_the_options() -> None:
    with pytest.raises(
        SailSyntaxError,
        match=r"^@MetricDefinition has no option 'colour' \(options: axis, better, description, tags, unit\)",
    ):
        parse_src(
            """
            @MetricDefinition(axis="work", colour="red")
            def WallTime():
                return ElapsedMilliseconds()
            """
        )


def test_option_value_outside_its_choices_is_rejected() -> None:
    with pytest.raises(
        SailSyntaxError, match=r"^@MetricDefinition\(axis='sideways'\): axis must be one of 'work', 'precision'"
    ):
        parse_src(
            """
            @MetricDefinition(axis="sideways")
            def WallTime():
                return ElapsedMilliseconds()
            """
        )


def test_non_literal_option_is_rejected() -> None:
    with pytest.raises(SailSyntaxError, match=r"^@MetricDefinition\(axis=\.\.\.\) must be a literal value") as info:
        parse_src(
            """
            AXIS = "work"
            @MetricDefinition(axis=AXIS)
            def WallTime():
                return ElapsedMilliseconds()
            """
        )
    assert info.value.location.line == 3
    assert info.value.fix == "use a string, number, tuple or list literal"


def test_module_nested_in_a_function_is_rejected() -> None:
    with pytest.raises(
        SailSyntaxError, match=r"^@ProblemDefinition on P, which is not at the top level of the source"
    ) as info:
        parse_src(
            """
            def make():
                @ProblemDefinition
                def P():
                    pass
            """
        )
    assert info.value.location.line == 3


def test_two_definitions_with_one_name_are_rejected() -> None:
    with pytest.raises(SailSyntaxError, match=r"^P is defined twice in this source \(lines 3 and 7\)") as info:
        parse_src(
            """
            @ProblemDefinition
            def P():
                pass

            @ProblemDefinition
            def P():
                pass
            """
        )
    assert info.value.location.line == 7


# -- signatures -----------------------------------------------------------------------
def test_model_with_fewer_than_three_parameters_is_rejected() -> None:
    with pytest.raises(SailSyntaxError, match=r"^model MLP\(task, inputType\) has the wrong parameters") as info:
        parse_src(
            """
            @ModelDefinition
            def MLP(task, inputType):
                pass
            """
        )
    assert info.value.location.line == 3
    assert info.value.fix == "a model module is written MLP(task, inputType, outputType, *hyper-parameters)"


def test_converter_without_annotations_is_rejected() -> None:
    with pytest.raises(
        SailSyntaxError, match=r"^converter Embed needs type annotations on its argument and its result"
    ) as info:
        parse_src(
            """
            @ConverterDefinition
            def Embed(a):
                return a
            """
        )
    assert info.value.fix == "write def Embed(x: FromType) -> ToType:"


def test_converter_without_return_annotation_is_rejected() -> None:
    with pytest.raises(SailSyntaxError, match=r"^converter Embed needs type annotations"):
        parse_src(
            """
            @ConverterDefinition
            def Embed(a: Atom):
                return a
            """
        )


def test_metric_parameter_without_default_is_rejected() -> None:
    with pytest.raises(SailSyntaxError, match=r"^metric Loss has parameters without defaults") as info:
        parse_src(
            """
            @MetricDefinition
            def Loss(k):
                return k
            """
        )
    assert info.value.fix == "metrics do not multiply runs: give every parameter a default"


def test_metric_parameters_with_defaults_are_accepted() -> None:
    module = parse_one(
        """
        @MetricDefinition
        def Loss(k=0.01):
            return ElapsedMilliseconds() * k
        """
    )
    assert module.defaults == frozenset({"k"})


def test_ranking_with_three_parameters_is_rejected() -> None:
    with pytest.raises(SailSyntaxError, match=r"^ranking R\(a, b, c\) has the wrong parameters") as info:
        parse_src(
            """
            @RankingDefinition
            def R(a, b, c):
                return a
            """
        )
    assert info.value.fix == "a ranking module is written R(result) for a score or (a, b) for a comparison"


def test_star_args_are_rejected() -> None:
    with pytest.raises(SailSyntaxError, match=r"^P uses \*args, \*\*kwargs"):
        parse_src(
            """
            @ProblemDefinition
            def P(*sizes):
                pass
            """
        )


# -- digest -----------------------------------------------------------------------------
WALLTIME = """
@MetricDefinition
def WallTime():
    return ElapsedMilliseconds()
"""


def test_digest_ignores_whitespace_comments_and_docstrings() -> None:
    edited = parse_one(
        """
        # a comment above


        @MetricDefinition
        def WallTime():
            \"\"\"Model work so far.\"\"\"

            return   ElapsedMilliseconds()   # trailing comment
        """
    )
    assert edited.digest == parse_one(WALLTIME).digest


def test_digest_changes_when_the_body_changes() -> None:
    edited = parse_one(
        """
        @MetricDefinition
        def WallTime():
            return TrainingMilliseconds()
        """
    )
    assert edited.digest != parse_one(WALLTIME).digest


def test_digest_changes_when_the_options_change() -> None:
    edited = parse_one(
        """
        @MetricDefinition(unit="ms")
        def WallTime():
            return ElapsedMilliseconds()
        """
    )
    assert edited.digest != parse_one(WALLTIME).digest


def test_digest_does_not_depend_on_the_origin() -> None:
    assert parse_one(WALLTIME, origin="a.py").digest == parse_one(WALLTIME, origin="b.py").digest


# -- free names ---------------------------------------------------------------------------
def test_undefined_name_is_a_free_name_with_its_site() -> None:
    module = parse_one(
        """
        @ProblemDefinition
        def P():
            x = Tensor(3)
            Train.Classify(x, mystery)
        """
    )
    assert module.free_names == frozenset({"mystery"})
    assert module.name_sites["mystery"] == (5, 22)


def test_sail_names_builtins_parameters_and_locals_are_not_free() -> None:
    module = parse_one(
        """
        @ModelDefinition
        def MLP(task, inputType, outputType, hidden):
            widths = [hidden for _ in range(2)]
            return Pipeline([Linear(w) for w in widths] + [Softmax(len(widths))])
        """
    )
    assert module.free_names == frozenset()


def test_support_names_read_by_a_module_are_free_names() -> None:
    model = parse_src(
        """
        SCALE = 2
        @ModelDefinition
        def MLP(task, inputType, outputType):
            return Linear(SCALE)
        """
    ).modules[0]
    assert model.free_names == frozenset({"SCALE"})


def test_names_used_inside_lambdas_are_free_names() -> None:
    module = parse_one(
        """
        @ProblemDefinition
        def P():
            f = lambda x: helper(x)
        """
    )
    assert module.free_names == frozenset({"helper"})


def test_capability_name_in_require_is_not_a_free_name() -> None:
    module = parse_one(
        """
        @ProblemDefinition
        def P():
            md = Require(SomeCapability)
            Train.Predict(Tensor(3), md.Energy(Tensor(3)))
        """
    )
    assert module.free_names == frozenset()


def test_capability_name_in_provides_is_not_a_free_name() -> None:
    module = parse_one(
        """
        @SoftwareDefinition
        def S(hardware):
            Provides(SomeCapability, "impl:Engine")
            return Environment()
        """
    )
    assert module.free_names == frozenset()


def test_name_site_is_the_first_use_in_source_order() -> None:
    # The nested use on line 5 comes first, though the use on line 6 is shallower in the tree.
    module = parse_one(
        """
        @ProblemDefinition
        def P():
            if True:
                x = mystery(1)
            y = mystery
        """
    )
    assert module.name_sites["mystery"] == (5, 12)


@pytest.mark.parametrize(("decorator", "name"), [
    ("ModelDefinition", "ModelDefinition"), ("ModelDefinition(backend='torch')", "ModelDefinition"),
    ("sail.ModelDefinition", "ModelDefinition"), ("sail.ModelDefinition()", "ModelDefinition"),
    ("registry['x']", None), ("make()()", None),
])
def test_decorator_name_reads_bare_called_and_dotted_decorators(decorator: str, name: str | None) -> None:
    import ast

    from saibench_jupyter.sail import decorator_name

    fn = ast.parse(f"@{decorator}\ndef f(): pass\n").body[0]
    assert isinstance(fn, ast.FunctionDef)
    assert decorator_name(fn.decorator_list[0]) == name
