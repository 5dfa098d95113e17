# kubeshim container image: the npm package built in one stage (npm pack), run from another that
# holds only the package's contents and its runtime dependencies; Node 26; no compiler in either
# stage (the demo's terminals, node-pty, are an optional dependency the image leaves out); runs as
# the unprivileged `node` user.
#
#   docker build -t kubeshim .
#   docker run --rm -p 8001:8001 \
#     -v "$PWD/tls:/etc/kubeshim/tls:ro" -v "$PWD/auth:/etc/kubeshim/auth:ro" \
#     -v "$HOME/.kube/config:/home/node/.kube/config:ro" kubeshim
#
# with tls/tls.crt and tls/tls.key for the listener (certs/make-certs.sh makes development ones)
# and auth/token holding the bearer token clients must present.
#
# The default command listens on all interfaces, so it is only allowed with TLS and client
# authentication (--token-file here; --client-ca for mTLS): see README, "Container". Any other
# command line replaces it: `docker run … kubeshim doctor --pod demo`, `… kubeshim serve --help`.

FROM node:26-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# without optional dependencies: nothing compiles
RUN npm ci --omit=optional --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json README.md LICENSE ./
COPY src ./src
COPY certs ./certs
COPY examples ./examples
# prepack builds dist/; the tarball is what `npm install -g` users get. The image holds its contents
# with the runtime dependencies the lockfile pins, and nothing else.
RUN npm pack --silent \
  && mkdir /app/image && tar -xzf kubeshim-*.tgz -C /app/image --strip-components=1 \
  && cp package-lock.json /app/image/ \
  && cd /app/image && npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund \
  && test ! -e node_modules/node-pty && rm package-lock.json

FROM node:26-slim
ENV NODE_ENV=production
# glibc hands freed heap back to the OS past 128 KiB by default, and every socket read's fresh 64 KiB
# buffer then faults it in again: up to 3x the CPU per GiB on port-forward (README, "Performance").
# Keeping 64 MiB of free heap is what a streaming proxy wants.
# `serve` adds V8's memory flags itself (src/server/memory-settings.ts), re-executing in place once.
ENV MALLOC_TRIM_THRESHOLD_=67108864
# (bufferutil loads its prebuilt binary without its install script)
COPY --from=build /app/image /opt/kubeshim
USER node
WORKDIR /home/node
EXPOSE 8001
# /healthz is answered before any client authentication; set this to http://… for a plain listener
ENV KUBESHIM_HEALTHZ=https://127.0.0.1:8001/healthz
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "const u=new URL(process.env.KUBESHIM_HEALTHZ);require(u.protocol.slice(0,-1)).get(u,{rejectUnauthorized:false},r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1))"]
ENTRYPOINT ["node", "/opt/kubeshim/dist/cli.js"]
CMD ["serve", "--listen", "0.0.0.0:8001", "--tls-cert", "/etc/kubeshim/tls/tls.crt", "--tls-key", "/etc/kubeshim/tls/tls.key", "--token-file", "/etc/kubeshim/auth/token"]
