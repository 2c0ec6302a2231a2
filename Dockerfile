# The fleet's one image: every service of docker-compose.yml (migrate,
# worker, dashboard, schedule) runs it with another tys command.
#   docker build -t tys .
#   docker run --rm -e DATABASE_URL=... -e REDIS_URL=... tys status

FROM node:20-bookworm-slim AS base
WORKDIR /app
ENV NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false

# The Prisma client is generated here, from the lock file's Prisma, with the
# JavaScript engine, and the TypeScript compiled to dist/: nothing is
# downloaded or compiled when the container starts.
FROM base AS build
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY prisma.config.ts tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY prisma ./prisma
COPY src ./src
COPY dashboard ./dashboard
COPY workers ./workers
RUN npx prisma generate && node bin/compile.js

# The Prisma CLI (the prisma package and its config loader) only generates
# the client, which the build stage did: never run in the image, it is
# 96 MB of the 247 MB of production dependencies.
FROM base AS production-deps
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts \
 && npm uninstall prisma --no-save --omit=dev --ignore-scripts

FROM base
ENV NODE_ENV=production
COPY --from=production-deps /app/node_modules ./node_modules
COPY package.json package-lock.json tsconfig.json ./
COPY bin ./bin
COPY prisma ./prisma
COPY src ./src
COPY dashboard ./dashboard
COPY workers ./workers
COPY config ./config
COPY --from=build /app/src/generated ./src/generated
COPY --from=build /app/dist ./dist
USER node
ENTRYPOINT ["node", "bin/tys.js"]
CMD ["--help"]
