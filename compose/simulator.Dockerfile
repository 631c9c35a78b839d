# syntax=docker/dockerfile:1
# Metrics simulator: stands in for the seven trading services (/metrics on 9090-9096, /health on 8080).
# Build context: the repo root (compose sets context: ..).
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY global.json Directory.Build.props Directory.Packages.props ./
COPY src/B25.Simulator/B25.Simulator.csproj src/B25.Simulator/
RUN dotnet restore src/B25.Simulator/B25.Simulator.csproj
COPY src/B25.Simulator/ src/B25.Simulator/
RUN dotnet publish src/B25.Simulator/B25.Simulator.csproj -c Release -o /app --no-restore

FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS final
WORKDIR /app
COPY --from=build /app ./
USER $APP_UID
EXPOSE 8080 9090 9091 9092 9093 9094 9095 9096
ENTRYPOINT ["dotnet", "B25.Simulator.dll"]
