"""What ``synthscape sample``'s options ask for: the order (a condition and count, or a plan), the
shard, and a layout model's label maps. Only turns options into checked values for
``services.sample_order``."""

from __future__ import annotations

import argparse
from pathlib import Path

from synthscape.core.errors import SynthscapeError
from synthscape.core.sampling.orders import Order, read_plan
from synthscape.core.sampling.shards import Shard, torchrun_shard
from synthscape.core.schema.conditions import ConditionSchema


def sample_layouts(args: argparse.Namespace, generator, domain) -> tuple[Order | None, object]:
    """A layout model's label maps: ``--layouts DIR`` (and its rows as the order) or the simulator at ``--size``."""
    from synthscape.layouts import check_layout_options, folder_layouts, simulated_layouts

    appearance = ConditionSchema.parse(args.condition or [])
    free = set(getattr(domain, "appearance", ()))  # attributes a layout does not fix (driving: weather, time)
    restyled = bool(appearance) and set(appearance) <= free
    if args.layouts is not None and appearance and free and not restyled:
        fixed = sorted(set(appearance) - free)
        raise SynthscapeError(f"--layouts renders its folder's rows with their own {', '.join(fixed)} (the layout fixes "
                              f"it); --condition may set only {', '.join(sorted(free))} for them")
    given = [name for name, value in (("--condition", args.condition and not restyled), ("--plan", args.plan),
                                      ("--count-per-condition", args.count_per_condition), ("--size", args.size)) if value]
    check_layout_options(generator, args.size, args.layouts, given)
    if generator.label_map is None:
        return None, None
    if args.layouts is not None:
        order, source = folder_layouts(generator, domain, args.layouts, args.start, args.count, args.allow_outside_paths)
        if restyled:  # the same streets under another weather or time: the rows' other attributes stay
            restyle = domain.schema.validate(appearance)
            order = [({**condition, **restyle}, count) for condition, count in order]
        return order, source
    return None, simulated_layouts(generator, domain, args.size)


def sample_request(args: argparse.Namespace, schema: ConditionSchema) -> Order:
    """The order the sample options spell: a --plan, or one condition with a count."""
    if args.plan and (args.condition or args.count is not None):
        raise SynthscapeError("--plan rows carry their own conditions and counts: drop --condition and --count "
                              "(--count-per-condition fills rows without a count)")
    if args.plan:
        return read_plan(args.plan, schema, default_count=args.count_per_condition)
    if args.count is None and args.count_per_condition is None:
        raise SynthscapeError("say how many samples: --count N, --count-per-condition N, or --plan CSV")
    count = args.count if args.count is not None else args.count_per_condition
    return [(schema.validate(ConditionSchema.parse(args.condition)), count)]


def sample_shard(text: str | None, out: Path) -> tuple[Shard | None, Path]:
    """The shard this process samples and its folder: ``--shard I/N`` writes to ``--out`` itself;
    under torchrun each rank writes its shard to ``--out/shard-RRR-of-NNN``."""
    from_torchrun = torchrun_shard()
    if text is not None and from_torchrun is not None:
        raise SynthscapeError("--shard and torchrun both split the samples: use one (torchrun shards by rank)")
    if text is not None:
        return Shard.parse(text), out
    if from_torchrun is not None and from_torchrun.count > 1:
        out.mkdir(parents=True, exist_ok=True)
        return from_torchrun, out / from_torchrun.name
    return None, out
