# kikitori: the API, the worker and every other kikitori command from one image. The entrypoint is the
# kikitori CLI: `podman run IMAGE` serves; `podman run IMAGE models list`, `… transcribe …` run those.
# The steps are scripts/setup's: Debian's ffmpeg, then `npm ci`, which compiles whisper.cpp.
#
#   CPU:  podman build -t kikitori .
#   CUDA: podman build -t kikitori:cuda --build-arg GPU=1 \
#           --build-arg BASE=docker.io/nvidia/cuda:12.4.1-runtime-ubuntu22.04 .
#         (run with the GPU passed in: docker run --gpus all …, podman run --device nvidia.com/gpu=all …)
# Here, with no registry, `containers/build kikitori` builds it FROM a base made from Debian's packages.
ARG BASE=docker.io/library/node:20-bookworm-slim

FROM ${BASE} AS runtime
ENV DEBIAN_FRONTEND=noninteractive
# Node.js 20 is added (NodeSource) only where the base lacks it, as CUDA's runtime images do.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg ca-certificates \
 && if ! command -v node >/dev/null; then \
      apt-get install -y --no-install-recommends curl gnupg \
      && curl -fsSL https://deb.nodesource.com/setup_20.x | bash - \
      && apt-get install -y --no-install-recommends nodejs; \
    fi \
 && rm -rf /var/lib/apt/lists/*

FROM runtime AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ cmake && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/kikitori
# npm ci's install script builds kikitori's whisper.cpp addon (scripts/build-whisper, src/whisper/native).
COPY package.json package-lock.json ./
COPY scripts/build-whisper scripts/
COPY src/whisper/native src/whisper/native/
# whisper.cpp is compiled for CPU_FLAGS: scripts/setup uses -march=native, but an image runs on other
# machines (x86-64-v3: AVX2 and FMA, any x86-64 CPU since 2015). Native modules build against the
# installed Node.js headers, with no download. The secret `ca` is a TLS-inspecting proxy's CA, if any.
ARG CPU_FLAGS="-march=x86-64-v3 -O3"
ARG WHISPER_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
RUN --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/ca; fi \
 && node_prefix="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")" \
 && if [ -f "$node_prefix/include/node/node.h" ]; then export npm_config_nodedir="$node_prefix"; fi \
 && CFLAGS="$CPU_FLAGS" CXXFLAGS="$CPU_FLAGS" KIKITORI_WHISPER_CMAKE_ARGS="$WHISPER_CMAKE_ARGS" npm ci --no-audit --no-fund
# The runtime's node_modules, apart: a change to the sources alone does not copy them again.
RUN mkdir -p /opt/production && cp package.json package-lock.json /opt/production/ \
 && cp -a node_modules /opt/production/ && cd /opt/production && npm prune --omit=dev --no-audit --no-fund
COPY . .
RUN npm run build

FROM runtime
# GPU=1: the built-in Whisper server runs on CUDA (the prebuilt @fugood/whisper.node CUDA build).
ARG GPU=0
WORKDIR /opt/kikitori
RUN ln -s /opt/kikitori/bin/kikitori.js /usr/local/bin/kikitori
COPY --from=build /opt/production/node_modules node_modules
COPY . .
COPY --from=build /opt/kikitori/dist dist
COPY --from=build /opt/kikitori/web/dist web/dist
# Listening on all addresses inside the container: set KIKITORI_ACCESS_KEY_ID/SECRET (or, on a trusted
# network only, KIKITORI_ALLOW_OPEN_REMOTE=1). Keep /var/lib/kikitori on a volume.
ENV KIKITORI_HOST=0.0.0.0 \
    KIKITORI_DATA_DIR=/var/lib/kikitori \
    KIKITORI_MODELS=/var/lib/kikitori/models \
    KIKITORI_GPU=${GPU}
EXPOSE 7600
ENTRYPOINT ["kikitori"]
CMD ["serve"]
