"""The classic autoencoder homework on MNIST: fit a 2-D autoencoder, plot the test codes
coloured by digit, and show a few reconstructions.

    python python/examples/mnist_homework.py ../shared/data/mnist [--limit 60000] [--out codes.png]
"""

import argparse

import numpy as np

import aekit


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("mnist", help="directory with MNIST's four IDX files")
    ap.add_argument("--limit", type=int, default=60000, help="training images to use")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--out", default="mnist-codes.png")
    args = ap.parse_args(argv)

    X_train, y_train, X_test, y_test = aekit.datasets.load_mnist(args.mnist)
    X_train, y_train = X_train[: args.limit], y_train[: args.limit]
    ae = aekit.AutoEncoder(hidden=(512, 128), latent=2, epochs=args.epochs, batch_size=128,
                           seed=0).fit(X_train)
    codes = ae.transform(X_test)
    error = -ae.score(X_test)
    print(f"test squared error per image: {error:.2f}")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 6))
        points = ax.scatter(codes[:, 0], codes[:, 1], c=y_test, cmap="tab10", s=2)
        fig.colorbar(points, ax=ax, label="digit")
        ax.set_title("MNIST test codes of a 2-D autoencoder")
        fig.savefig(args.out, dpi=120)
        print(f"codes plotted in {args.out}")
    except ImportError:
        print("matplotlib is not installed: no plot")
    return ae, codes, error


if __name__ == "__main__":
    main()
