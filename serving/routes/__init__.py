"""One router per resource, each an `APIRouter(prefix, tags)` included by `serving.main`."""
