import sys
from pathlib import Path

# The temporary-clone helpers live with the preview tests; promotion runs in the same kind of sandbox.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "preview"))
