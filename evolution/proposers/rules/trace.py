"""Trace a task's reference into the op IR, on the meta device (no memory, no GPU).

The model is built on ``meta`` with the task's init inputs and traced with ``make_fx`` (ATen
level, so ``nn.Linear``, ``F.gelu`` and ``torch.relu`` all arrive as the ATen ops they run),
with parameters and buffers passed as explicit inputs so each keeps its ``state_dict`` name.
ATen level rather than ``symbolic_trace``: Python on shapes (``math.sqrt(q.shape[-1])``,
``x.shape[-1] // 2``) simply runs, and module calls need no per-class normalization.

Scalars the forward reads from the model (``self.eps``, ``self.negative_slope``) must stay
attributes in the candidate, since hidden shapes construct the model with other values:
``bind_attributes`` perturbs each float attribute, traces again and records which op
arguments moved. Tracing every visible shape checks that the graph does not change with size.
"""

from __future__ import annotations

import inspect
import math
import operator
import re
from typing import Any

import torch
import torch.nn as nn

from evolution.proposers.rules.ir import AttrRef, Graph, Node, Unsupported, dtype_name, reset_ids

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_FRAME_RE = re.compile(r'File "([^"]+)", line (\d+)')
# Attribute values v -> op argument: how a moved constant may relate to the attribute.
# Ops whose int arguments are dims, sizes or indices, read from tensors at run time by the rules.
_SHAPE_ARGS_OPS = {"view", "_unsafe_view", "reshape", "expand", "slice", "select", "split", "narrow", "unflatten",
                   "flatten", "permute", "transpose", "t", "squeeze", "unsqueeze", "cat", "constant_pad_nd",
                   "flip", "full", "zeros", "ones", "arange", "new_zeros", "new_ones", "empty", "sum", "mean",
                   "cumsum", "cumprod", "nll_loss_forward"}
_TRANSFORMS = ("v", "-v", "1.0 / v", "v * v", "math.sqrt(v)", "0.5 * v", "2.0 * v", "1.0 - v")


def build(task: Any, shape: Any = None) -> tuple[nn.Module, list[Any]]:
    """The reference model and inputs at ``shape`` (default: the task's), on ``meta``, in eval
    mode: what the evaluator times and compares (BatchNorm with running statistics, no dropout)."""
    shape = shape or task.default_shape
    dtype = DTYPES[task.dtype]
    with task.shape(shape) as module, torch.device("meta"):
        model = module.Model(*module.get_init_inputs())
        raw = list(module.get_inputs())
    model = model.to(dtype=dtype).eval()  # as the evaluator runs the reference (inputs.make_reference)
    inputs = [v.to(dtype) if isinstance(v, torch.Tensor) and v.is_floating_point() else v for v in raw]
    return model, inputs


def _make_fx(model: nn.Module, inputs: list[Any]) -> tuple[torch.fx.GraphModule, list[str]]:
    from torch.fx.experimental.proxy_tensor import make_fx
    from torch.func import functional_call

    named = list(model.named_parameters()) + list(model.named_buffers())
    names = [n for n, _ in named]
    k = len(names)

    def fn(*flat: Any) -> Any:
        return functional_call(model, dict(zip(names, flat[:k])), tuple(flat[k:]))

    with torch.no_grad():
        gm = make_fx(fn, record_stack_traces=True)(*[t for _, t in named], *inputs)
    return gm, names


def _line(fx_node: Any, task_path: str) -> int | None:
    found = None
    for path, line in _FRAME_RE.findall(fx_node.meta.get("stack_trace") or ""):
        if path == task_path:
            found = int(line)
    return found


def _normalize(target: Any, args: tuple, kwargs: dict, convert: Any) -> dict[str, Any]:
    schema = target._schema
    out: dict[str, Any] = {}
    for i, arg in enumerate(schema.arguments):
        if i < len(args) and not arg.kwarg_only:
            value = args[i]
        elif arg.name in kwargs:
            value = kwargs[arg.name]
        elif arg.has_default_value():
            value = arg.default_value
        else:
            value = None
        out[arg.name] = convert(value)
    return out


def _convert_value(value: Any, nodes: dict[Any, Node]) -> Any:
    if isinstance(value, torch.fx.Node):
        return nodes[value]
    if isinstance(value, (list, tuple)):
        return [_convert_value(v, nodes) for v in value]
    if isinstance(value, torch.dtype):
        return dtype_name(value)
    if isinstance(value, (torch.device, torch.layout, torch.memory_format)):
        return str(value)
    return value


def _meta(fx_node: Any) -> tuple[tuple[int, ...], str]:
    val = fx_node.meta.get("val")
    if isinstance(val, torch.Tensor):
        return tuple(int(s) for s in val.shape), dtype_name(val.dtype)
    if isinstance(val, (tuple, list)):
        return (), "tuple"
    return (), "scalar"


def _forward_arg_names(model: nn.Module, n_inputs: int) -> list[str]:
    params = list(inspect.signature(model.forward).parameters.values())
    kinds = {p.kind for p in params}
    if inspect.Parameter.VAR_POSITIONAL in kinds or inspect.Parameter.VAR_KEYWORD in kinds:
        raise Unsupported("the reference forward takes *args / **kwargs")
    names = [p.name for p in params]
    if len(names) < n_inputs:
        raise Unsupported(f"get_inputs() returns {n_inputs} values, forward takes {len(names)}")
    return names[:n_inputs]


def _inplace_target(op: str, fx: Any, nodes: dict[Any, Node]) -> Any:
    """The fx node an in-place pointwise op (``clamp_min_``, ``masked_fill_``) mutates, when
    it is a computed temporary (not an input, a parameter or a view); None for other ops.
    Such an op becomes its functional form, and the mutated tensor's later readers read it."""
    from evolution.proposers.rules import ops

    if not op.endswith("_") or op.startswith("_") or op[:-1] not in ops.POINTWISE:
        return None
    target = fx.args[0] if fx.args else None
    if not isinstance(target, torch.fx.Node) or target not in nodes:
        return None
    base = nodes[target]
    if base.is_leaf or base.op in ("view", "_unsafe_view", "reshape", "expand", "t", "transpose", "permute",
                                   "slice", "select", "unsqueeze", "squeeze", "alias", "as_strided"):
        raise Unsupported(f"aten.{op} mutates {base.op} {base.name or ''} in place", _line(fx, ""))
    return target


def to_ir(gm: torch.fx.GraphModule, names: list[str], arg_names: list[str], task_path: str) -> Graph:
    nodes: dict[Any, Node] = {}
    ir: list[Node] = []
    params: list[Node] = []
    inputs: list[Node] = []
    placeholders = 0
    outputs: list[Node] = []
    output_tuple = False
    for fx in gm.graph.nodes:
        shape, dtype = _meta(fx)
        line = _line(fx, task_path)
        if fx.op == "placeholder":
            if placeholders < len(names):
                node = Node("param", shape=shape, dtype=dtype, name=names[placeholders])
                params.append(node)
            else:
                i = placeholders - len(names)
                node = Node("input", shape=shape, dtype=dtype, name=arg_names[i], index=i)
                inputs.append(node)
            placeholders += 1
        elif fx.op == "call_function" and fx.target is operator.getitem:
            node = Node("getitem", {"self": nodes[fx.args[0]]}, shape, dtype, line, index=int(fx.args[1]))
        elif fx.op == "call_function" and isinstance(fx.target, torch._ops.OpOverload):
            convert = lambda v: _convert_value(v, nodes)  # noqa: E731
            args = _normalize(fx.target, fx.args, fx.kwargs, convert)
            op = fx.target.overloadpacket.__name__
            mutated = _inplace_target(op, fx, nodes)
            if mutated is not None:
                op = op[:-1]
            node = Node(op, args, shape, dtype, line)
            node.name = fx.target._overloadname
            if mutated is not None:  # later reads of the mutated tensor see the new value
                nodes[mutated] = node
        elif fx.op == "output":
            result = fx.args[0]
            output_tuple = isinstance(result, (list, tuple))
            for value in (result if output_tuple else [result]):
                if not isinstance(value, torch.fx.Node):
                    raise Unsupported(f"the forward returns a non-tensor value {value!r}")
                outputs.append(nodes[value])
            continue
        elif fx.op == "get_attr":
            raise Unsupported(f"a tensor constant created in forward ({fx.target})", line)
        else:
            raise Unsupported(f"traced node {fx.op} {fx.target}", line)
        nodes[fx] = node
        ir.append(node)
    return Graph(ir, inputs, params, outputs, output_tuple, arg_names)


def trace_model(model: nn.Module, inputs: list[Any], task_path: str) -> Graph:
    for i, value in enumerate(inputs):
        if not isinstance(value, torch.Tensor):
            raise Unsupported(f"forward input {i} is a {type(value).__name__}, not a tensor")
    arg_names = _forward_arg_names(model, len(inputs))
    try:
        gm, names = _make_fx(model, inputs)
    except Unsupported:
        raise
    except Exception as exc:  # noqa: BLE001 - any tracing failure is reported as a note
        raise Unsupported(f"tracing on the meta device failed: {type(exc).__name__}: {str(exc)[:200]}") from None
    return to_ir(gm, names, arg_names, task_path)


def _scalar_slots(graph: Graph) -> dict[tuple[int, str, int], Any]:
    """Every Python number in op arguments, keyed by (node position, argument, list index)."""
    slots: dict[tuple[int, str, int], Any] = {}
    for pos, node in enumerate(graph.nodes):
        for name, value in node.args.items():
            if isinstance(value, bool):
                continue
            if isinstance(value, (int, float)):
                slots[(pos, name, -1)] = value
            elif isinstance(value, list):
                for j, v in enumerate(value):
                    if isinstance(v, (int, float)) and not isinstance(v, bool):
                        slots[(pos, name, j)] = v
    return slots


def _signature(graph: Graph) -> list[tuple[str, tuple[int, ...]]]:
    return [(n.op, n.shape) for n in graph.nodes]


def _float_attrs(model: nn.Module) -> list[tuple[str, nn.Module, str, float]]:
    found = []
    for mod_name, module in model.named_modules():
        for key, value in vars(module).items():
            if key.startswith("_") or type(value) is not float:
                continue
            path = f"{mod_name}.{key}" if mod_name else key
            found.append((path, module, key, value))
    return found


def _explain(old: float, new: float, v_old: float, v_new: float) -> str | None:
    for transform in _TRANSFORMS:
        try:
            a = eval(transform, {"math": math}, {"v": v_old})  # noqa: S307 - fixed expressions
            b = eval(transform, {"math": math}, {"v": v_new})  # noqa: S307
        except (ZeroDivisionError, ValueError):
            continue
        if math.isclose(a, old, rel_tol=1e-9, abs_tol=1e-12) and math.isclose(b, new, rel_tol=1e-9, abs_tol=1e-12):
            return transform
    return None


def bind_attributes(task: Any, graph: Graph, notes: list[str]) -> None:
    """Mark op arguments that come from float attributes of the model (see module doc)."""
    model, inputs = build(task)
    base = _scalar_slots(graph)
    for path, module, key, value in _float_attrs(model):
        moved = value * 1.37 + 0.173
        setattr(module, key, moved)
        try:
            other = trace_model(model, inputs, str(task.path))
        except Unsupported:
            other = None
        finally:
            setattr(module, key, value)
        if other is None or _signature(other) != _signature(graph):
            if other is not None:
                notes.append(f"the graph's structure depends on attribute {path}; its traced value is kept")
                graph.structural_attrs.append(path)
            continue
        for slot, new in _scalar_slots(other).items():
            old = base.get(slot)
            if old is None or old == new or isinstance(old, bool):
                continue
            transform = _explain(float(old), float(new), value, moved)
            pos, arg, _ = slot
            node = graph.nodes[pos]
            if transform is None:
                raise Unsupported(f"argument {arg} of aten.{node.op} depends on attribute {path} "
                                  "in a way the rules do not follow", node.line)
            node.attrs[arg] = AttrRef(path, transform)


def check_visible_shapes(task: Any, graph: Graph) -> None:
    """The graph must have the same ops at every visible shape; float constants must not move."""
    base_slots = _scalar_slots(graph)
    ops = [n.op for n in graph.nodes]
    sizes: dict[tuple[int, str, int], set[tuple[int, int]]] = {}  # int slot -> input dims it equals
    for shape in task.visible_shapes[1:]:
        model, inputs = build(task, shape)
        other = trace_model(model, inputs, str(task.path))
        if [n.op for n in other.nodes] != ops:
            raise Unsupported(f"the traced graph changes with the shape ({shape.name}): "
                              "shape-dependent control flow")
        for slot, new in _scalar_slots(other).items():
            old = base_slots.get(slot)
            node = graph.nodes[slot[0]]
            if isinstance(old, float) and old != new and slot[1] not in node.attrs:
                node.moving.add(slot[1])
            if node.op in ("slice", "select") and type(old) is int and old != new and slot[1] != "dim":
                node.moving.add(slot[1])  # a bound computed from a size: refused where read (lower)
            if type(old) is int and old != new and slot[2] == -1 and node.op not in _SHAPE_ARGS_OPS:
                found = {(i, d) for i, (a, b) in enumerate(zip(graph.inputs, other.inputs))
                         for d in range(min(len(a.shape), len(b.shape))) if a.shape[d] == old and b.shape[d] == new}
                sizes[slot] = sizes[slot] & found if slot in sizes else found
    for (pos, arg, _), found in sizes.items():  # an int that follows an input's size: read at run time
        node = graph.nodes[pos]
        if found:
            node.sizes[arg] = min(found)
        else:
            node.moving.add(arg)


def trace_task(task: Any, notes: list[str] | None = None) -> Graph:
    """The task's reference as IR at its default shape; raises ``Unsupported``."""
    reset_ids()  # deterministic node numbering, hence deterministic generated sources
    notes = notes if notes is not None else []
    try:
        model, inputs = build(task)
    except Exception as exc:  # noqa: BLE001 - the reference's own code failed on meta
        raise Unsupported(f"building the reference on the meta device failed: "
                          f"{type(exc).__name__}: {str(exc)[:200]}") from None
    graph = trace_model(model, inputs, str(task.path))
    graph.model = model
    bind_attributes(task, graph, notes)
    check_visible_shapes(task, graph)
    return graph
