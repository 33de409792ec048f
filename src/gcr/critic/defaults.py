"""Defaults for the critic: the released checkpoints and the serving settings they expect.

The RationalRewards release has one 8B checkpoint (Qwen3-VL backbone) per task,
published on the Hugging Face Hub by TIGER-Lab.
"""

from __future__ import annotations

from gcr.task import Task

#: Released RationalRewards checkpoint for judging text-to-image outputs.
RATIONALREWARDS_T2I = "TIGER-Lab/RationalRewards-8B-T2I"
#: Released RationalRewards checkpoint for judging image edits.
RATIONALREWARDS_EDIT = "TIGER-Lab/RationalRewards-8B-Edit"

DEFAULT_CRITIC_MODELS: dict[Task, str] = {
    Task.T2I: RATIONALREWARDS_T2I,
    Task.EDIT: RATIONALREWARDS_EDIT,
}

#: Environment variable holding the critic server's API key (OPENAI_API_KEY is used instead only
#: for OpenAI's own API, https://api.openai.com, or when named as the key variable).
API_KEY_ENV = "GCR_CRITIC_API_KEY"

#: Images sent to the critic are downscaled to at most this many pixels; the
#: released model was fine-tuned with the same image pixel cap.
DEFAULT_MAX_PIXELS = 802_816
#: Where images are fitted to the pixel budget for an HTTP critic: ``client`` (gcr
#: downscales before sending; right for any server, required for hosted APIs that
#: cannot apply a budget) or ``server`` (images go as they are and the server's own
#: processor applies the budget, as a server started with ``gcr serve critic`` does).
IMAGE_RESIZE_MODES = ("client", "server")
DEFAULT_IMAGE_RESIZE = "client"
#: Environment variables that set the two image-transport settings of HTTP critics
#: for every command (explicit arguments win).
IMAGE_RESIZE_ENV = "GCR_CRITIC_IMAGE_RESIZE"
LOCAL_MEDIA_ENV = "GCR_CRITIC_LOCAL_MEDIA"
#: Smallest image (in pixels) the Qwen3-VL processor upsamples to.
DEFAULT_MIN_PIXELS = 65_536

#: Serving settings the released model ran with upstream.
DEFAULT_MAX_MODEL_LEN = 40_960
DEFAULT_MAX_IMAGES_PER_PROMPT = 16
DEFAULT_PORT = 8000

#: Client-side settings of the OpenAI-compatible backend.
DEFAULT_TIMEOUT_S = 300.0
DEFAULT_MAX_RETRIES = 3
DEFAULT_MAX_CONCURRENCY = 16


def default_critic_model(task: Task | str) -> str:
    """The released checkpoint that judges ``task``."""
    return DEFAULT_CRITIC_MODELS[Task.parse(task)]
