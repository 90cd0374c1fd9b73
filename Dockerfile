FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ledger ledger
COPY services services
COPY edge edge
COPY mobile_api mobile_api
RUN pip install --no-cache-dir .
ENV DAODI_KEY_DIR=/data/keys
VOLUME ["/data"]
EXPOSE 8000
CMD ["daodi", "serve", "--host", "0.0.0.0", "--port", "8000"]
