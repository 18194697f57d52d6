"""`python -m scripts.decode`: show an AdmissionReview reply from stdin with its patch decoded."""

from __future__ import annotations

import base64
import json
import sys


def main() -> int:
    review = json.load(sys.stdin)
    response = review.get("response", {})
    if "patch" in response:
        response["patch"] = json.loads(base64.b64decode(response["patch"]))
    json.dump(review, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
