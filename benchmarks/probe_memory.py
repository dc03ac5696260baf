"""The finetune recipe's linear probe holds a bounded sample of features.

    python benchmarks/probe_memory.py                       # ResNet-50, 32 px, 4,000 and 40,000 images
    python benchmarks/probe_memory.py --images 2000 20000 --model resnet18

For each data size, a fresh process builds the model (random weights), feeds
`fit_linear_probe` a `tf.data` pipeline of that many random uint8 images in
10 classes (generated batch by batch, so the data itself holds no memory), and
reports the peak of the NumPy memory that `tracemalloc` sees during the probe
(the features and what the fit copies of them), the process's peak RSS, the
images whose features were kept and the seconds. Side by side: the ratio of
the largest run's peak to the smallest's, about 1 when the sample is bounded,
about the ratio of the sizes when every image's features are kept.
"""

import argparse
import json
import subprocess
import sys

ONE = """
import json, resource, sys, time, tracemalloc
import numpy as np
import tensorflow as tf
import keras
from keras_resnets.models.builder import build_model
from keras_resnets.training import transfer

model_name, size, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
net = build_model(model_name, input_shape=(size, size, 3), classes=10)

def batches():
    rng = np.random.default_rng(0)
    for start in range(0, n, 256):
        count = min(256, n - start)
        yield rng.integers(0, 256, (count, size, size, 3), dtype="uint8"), (np.arange(start, start + count) % 10).astype("int32")

data = tf.data.Dataset.from_generator(batches, output_signature=(
    tf.TensorSpec((None, size, size, 3), tf.uint8), tf.TensorSpec((None,), tf.int32)))
kept = []
features = getattr(transfer, "probe_features", None)
if features is not None:  # count the images the probe keeps
    def counting(*args, **kwargs):
        f, labels = features(*args, **kwargs)
        kept.append(len(labels))
        return f, labels
    transfer.probe_features = counting
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
tracemalloc.start()
started = time.time()
transfer.fit_linear_probe(net, data)
seconds = time.time() - started
_, peak = tracemalloc.get_traced_memory()
print(json.dumps({"images": n, "kept": kept[0] if kept else n, "numpy_peak_mib": peak / 2**20,
                  "rss_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rss_before_mib": rss0, "seconds": seconds}))
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--images", type=int, nargs="+", default=[4000, 40000])
    args = parser.parse_args(argv)
    rows = []
    for n in args.images:
        out = subprocess.run([sys.executable, "-c", ONE, args.model, str(args.image_size), str(n)],
                             capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{args.model}, {args.image_size} px, 10 classes, random weights and images")
    print(f"{'images':>8} {'kept':>8} {'numpy peak MiB':>15} {'RSS peak MiB':>13} {'seconds':>8}")
    for r in rows:
        print(f"{r['images']:>8} {r['kept']:>8} {r['numpy_peak_mib']:>15.1f} {r['rss_peak_mib']:>13.0f} "
              f"{r['seconds']:>8.1f}")
    print(f"peak ratio, {rows[-1]['images']} / {rows[0]['images']} images: "
          f"numpy {rows[-1]['numpy_peak_mib'] / rows[0]['numpy_peak_mib']:.2f}, "
          f"RSS {rows[-1]['rss_peak_mib'] / rows[0]['rss_peak_mib']:.2f}")


if __name__ == "__main__":
    main()
