"""tizi's launcher around llama-cpp-python's OpenAI-compatible server (image tizi/llm-server).

`python -m tizi_llm` checks the model file against its expected sha256, starts the HTTP
server at once (liveness), loads the model in the background (readiness), and puts an ASGI
gate in front of llama_cpp.server's FastAPI app: API keys from files with rotation, OpenAI
error shapes for 401/404, JSON access log lines without keys or prompt text.
"""

__version__ = "0.1.0"
