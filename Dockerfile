# The WekaCoin node. Built the same way .ci/run installs the project:
# the Debian packages from .ci/system-packages, then `pip install` of the project.
FROM python:3.11-slim-bookworm

WORKDIR /opt/wekacoin
COPY .ci/system-packages .ci/system-packages
RUN .ci/system-packages runtime && rm -rf /var/lib/apt/lists/*

COPY pyproject.toml setup.py README.md ./
COPY wekacoin ./wekacoin
RUN pip install --no-cache-dir .

# libp2p, RPC (bound per node.toml), Prometheus metrics
EXPOSE 30333 8645 9645
VOLUME ["/data"]
ENTRYPOINT ["wekacoin"]
CMD ["node", "--config", "/data/node.toml"]
