# kubeshim container image: built in one stage, run from another that holds only dist/ and the
# production dependencies; Node 26 (the current LTS); runs as the unprivileged `node` user.
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
# node-pty (the demo's pseudo-terminals) compiles from source
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build
# the same dependencies without the development ones, compiled modules included
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:26-slim
ENV NODE_ENV=production
# glibc hands freed heap back to the OS past 128 KiB by default, and every socket read's fresh 64 KiB
# buffer then faults it in again: up to 3x the CPU per GiB on port-forward (README, "Performance").
# Keeping 64 MiB of free heap is what a streaming proxy wants.
ENV MALLOC_TRIM_THRESHOLD_=67108864
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
USER node
EXPOSE 8001
# /healthz is answered before any client authentication; set this to http://… for a plain listener
ENV KUBESHIM_HEALTHZ=https://127.0.0.1:8001/healthz
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "const u=new URL(process.env.KUBESHIM_HEALTHZ);require(u.protocol.slice(0,-1)).get(u,{rejectUnauthorized:false},r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1))"]
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["serve", "--listen", "0.0.0.0:8001", "--tls-cert", "/etc/kubeshim/tls/tls.crt", "--tls-key", "/etc/kubeshim/tls/tls.key", "--token-file", "/etc/kubeshim/auth/token"]
