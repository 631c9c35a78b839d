# syntax=docker/dockerfile:1
# B25.Alerting service image. Build context: the repo root (compose sets context: ..).
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
# Restore first, from the build files only, so the restore layer is cached across code edits.
COPY global.json Directory.Build.props Directory.Packages.props ./
COPY contracts/B25.Alerting.Contracts/B25.Alerting.Contracts.csproj contracts/B25.Alerting.Contracts/
COPY src/B25.Alerting/B25.Alerting.csproj src/B25.Alerting/
# ReadyToRun (crossgen2) for the image's architecture: the start compiles about half the methods it did, and the first page
# after a start is 10-30 ms faster (docs/benchmarks.md, "First page after a start"). BuildKit sets TARGETARCH (amd64,
# arm64), which -a maps to the runtime identifier (linux-x64, linux-arm64); the runtime image keeps running the dll.
ARG TARGETARCH
RUN dotnet restore src/B25.Alerting/B25.Alerting.csproj -a $TARGETARCH -p:PublishReadyToRun=true
COPY contracts/ contracts/
COPY src/B25.Alerting/ src/B25.Alerting/
# The service copies the repo's templates/ and docs/runbooks/*.md next to its binary. All of docs/ (this build
# stage only) so the image builds whether or not docs/runbooks exists yet.
COPY templates/ templates/
COPY docs/ docs/
RUN dotnet publish src/B25.Alerting/B25.Alerting.csproj -c Release -a $TARGETARCH --self-contained false -p:PublishReadyToRun=true -o /app --no-restore

FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS final
WORKDIR /app
COPY --from=build /app ./
RUN mkdir -p /var/lib/b25-alerting && chown "$APP_UID" /var/lib/b25-alerting
# The aspnet images define a non-root user; run as it.
USER $APP_UID
ENV ASPNETCORE_HTTP_PORTS=8080
# Tiered JIT: promote hot methods at once instead of after 100 ms without new compilations. A replica that starts
# into a storm otherwise runs unoptimised code for minutes, since the storm keeps the runtime "starting up"; on
# 2 cores that made its first pages 10x slower (docs/benchmarks.md, "A replica that starts into a storm").
ENV DOTNET_TC_CallCountingDelayMs=0
EXPOSE 8080
ENTRYPOINT ["dotnet", "B25.Alerting.dll"]
