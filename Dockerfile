# Build: the locked dependencies into /app/.venv with uv; run: a slim image, non-root.
FROM python:3.11-slim AS build
RUN pip install --no-cache-dir "uv==0.13.9"
ENV UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY domain ./domain
COPY application ./application
COPY adapters ./adapters
COPY entrypoints ./entrypoints
COPY migrations ./migrations
COPY schema.sql ./
RUN uv sync --frozen --no-dev

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /app balance
WORKDIR /app
COPY --from=build --chown=balance:balance /app /app
ENV PATH=/app/.venv/bin:$PATH HOST=0.0.0.0 PORT=8080 PYTHONUNBUFFERED=1
USER balance
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health/ready', timeout=2)"]
CMD ["balance", "serve"]
