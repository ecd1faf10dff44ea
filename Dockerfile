# syntax=docker/dockerfile:1
# Build stage: the same `make docker-build-path` CI runs (for both
# platforms: make docker-build-paths). It runs on the build machine's own
# platform and cross-compiles for the target's, so
#   docker buildx build --platform linux/amd64,linux/arm64 .
# needs no emulation. The BPF objects for both are committed, so no clang
# is needed here.
FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG TARGETOS=linux
ARG TARGETARCH
RUN make docker-build-path VERSION=${VERSION} TARGETOS=${TARGETOS} TARGETARCH=${TARGETARCH}

# Final stage: the static binary alone. Run it with the privileges BPF
# tracing needs and the host's kernel interfaces:
#   docker run --rm -it --privileged --pid=host --net=host \
#     -v /sys/kernel/btf:/sys/kernel/btf:ro sendtrace --pid 1234
FROM scratch
COPY --from=build /src/sendtrace /sendtrace
ENTRYPOINT ["/sendtrace"]
