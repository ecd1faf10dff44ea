# syntax=docker/dockerfile:1
# Build stage: the same `make docker-build-path` CI runs. The BPF objects are
# committed, so no clang is needed here.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN make docker-build-path VERSION=${VERSION}

# Final stage: the static binary alone. Run it with the privileges BPF
# tracing needs and the host's kernel interfaces:
#   docker run --rm -it --privileged --pid=host --net=host \
#     -v /sys/kernel/btf:/sys/kernel/btf:ro sendtrace --pid 1234
FROM scratch
COPY --from=build /src/sendtrace /sendtrace
ENTRYPOINT ["/sendtrace"]
