# lobbyd's container images, built with BuildKit (docker build, docker
# compose build):
#
#   docker build -t lobbyd .                                # lobbyd (the last stage)
#   docker build --target fakeplayfab -t fakeplayfab .      # the fake PlayFab
#
# Both are static binaries on distroless (CA certificates for PlayFab's
# HTTPS, /etc/passwd with the nonroot user, no shell), run as uid 65532, and
# carry /healthcheck, a tiny Go program that GETs a URL and exits 0 on 2xx:
# the images have no curl or wget for a HEALTHCHECK.

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Modules first, as a layer of their own: rebuilt only when go.mod or go.sum
# change, not on every source edit.
COPY go.mod go.sum ./
RUN go mod download && go mod verify
COPY . .
# The compile cache survives between builds (BuildKit cache mount).
RUN --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ \
        ./cmd/lobbyd ./cmd/fakeplayfab ./cmd/healthcheck

# The fake PlayFab (docs/fakeplayfab.md), for development and load tests.
FROM gcr.io/distroless/static-debian12:nonroot AS fakeplayfab
COPY --from=build /out/fakeplayfab /out/healthcheck /
USER nonroot:nonroot
EXPOSE 8090
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/healthcheck", "http://127.0.0.1:8090/_fake/stats"]
ENTRYPOINT ["/fakeplayfab"]

# lobbyd. Configure it with LOBBYD_* variables (README.md); secrets come
# from the environment or *_FILE settings, never the image.
FROM gcr.io/distroless/static-debian12:nonroot AS lobbyd
COPY --from=build /out/lobbyd /out/healthcheck /
USER nonroot:nonroot
# The public listener (LOBBYD_ADDR). The admin listener (LOBBYD_ADMIN_ADDR,
# e.g. :9090) is off unless set, and is never published to players.
EXPOSE 8080
# /readyz is 200 when this node serves and reaches Redis; 503 while it
# starts, drains or has lost Redis. The start period covers waiting for
# Redis (LOBBYD_REDIS_START_TIMEOUT).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/healthcheck", "http://127.0.0.1:8080/readyz"]
ENTRYPOINT ["/lobbyd"]
