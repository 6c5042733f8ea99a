{{/* Helpers of the Kafka side: which broker the clients use. */}}

{{/*
"true" when the chart deploys its own Redpanda broker, "" when externalKafka.bootstrapServers
names one the user runs (then no Redpanda object is rendered).
Usage: {{- if include "ticket-pipeline.redpanda.enabled" . }}
*/}}
{{- define "ticket-pipeline.redpanda.enabled" -}}
{{- if not .Values.externalKafka.bootstrapServers -}}true{{- end -}}
{{- end -}}

{{/*
Kafka bootstrap servers of every client (producer, Spark drivers, topic Job, Console):
externalKafka.bootstrapServers when set, else the Redpanda client Service on the Kafka port
(9092). Redpanda advertises that same address, so clients never need the pod's own DNS name.
*/}}
{{- define "ticket-pipeline.kafkaBootstrap" -}}
{{- if include "ticket-pipeline.redpanda.enabled" . -}}
{{- printf "%s:9092" (include "ticket-pipeline.serviceHost" (dict "root" . "service" (include "ticket-pipeline.componentName" "redpanda"))) -}}
{{- else -}}
{{- .Values.externalKafka.bootstrapServers -}}
{{- end -}}
{{- end -}}

{{/*
The protocol of every Kafka client: PLAINTEXT with the chart's Redpanda (in-cluster), else from
externalKafka.tls.enabled and externalKafka.sasl.enabled (core.settings KAFKA_SECURITY_PROTOCOL).
*/}}
{{- define "ticket-pipeline.kafkaProtocol" -}}
{{- $external := .Values.externalKafka -}}
{{- if include "ticket-pipeline.redpanda.enabled" . -}}PLAINTEXT
{{- else if and $external.tls.enabled $external.sasl.enabled -}}SASL_SSL
{{- else if $external.tls.enabled -}}SSL
{{- else if $external.sasl.enabled -}}SASL_PLAINTEXT
{{- else -}}PLAINTEXT
{{- end -}}
{{- end -}}

{{/* "true" when the clients authenticate to the external broker with SASL. */}}
{{- define "ticket-pipeline.kafkaSasl" -}}
{{- if hasPrefix "SASL_" (include "ticket-pipeline.kafkaProtocol" .) -}}true{{- end -}}
{{- end -}}

{{/* "true" when the clients trust the external broker through the CA of externalKafka.tls.caSecret. */}}
{{- define "ticket-pipeline.kafkaCa" -}}
{{- if and (hasSuffix "SSL" (include "ticket-pipeline.kafkaProtocol" .)) .Values.externalKafka.tls.caSecret -}}true{{- end -}}
{{- end -}}

{{/*
The SASL password of the clients, from externalKafka.sasl.existingSecret: never a plain value.
*/}}
{{- define "ticket-pipeline.kafkaPasswordEnv" -}}
{{- if include "ticket-pipeline.kafkaSasl" . -}}
{{- if not .Values.externalKafka.sasl.existingSecret -}}
{{- fail "externalKafka.sasl.enabled needs externalKafka.sasl.existingSecret: the Secret holding the SASL password" -}}
{{- end -}}
{{- if not .Values.externalKafka.sasl.username -}}
{{- fail "externalKafka.sasl.enabled needs externalKafka.sasl.username" -}}
{{- end -}}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.externalKafka.sasl.existingSecret | quote }}
      key: {{ .Values.externalKafka.sasl.passwordKey | quote }}
{{- end -}}
{{- end -}}

{{/*
How a client of the pipeline talks to the brokers (core.kafka.KafkaConnection): the protocol,
the SASL user and password, the CA file mounted by kafkaCaVolumeMount.
Usage: {{- include "ticket-pipeline.kafkaSecurityEnv" . | nindent 12 }}
*/}}
{{- define "ticket-pipeline.kafkaSecurityEnv" -}}
- name: KAFKA_SECURITY_PROTOCOL
  value: {{ include "ticket-pipeline.kafkaProtocol" . | quote }}
{{- if include "ticket-pipeline.kafkaSasl" . }}
- name: KAFKA_SASL_MECHANISM
  value: {{ .Values.externalKafka.sasl.mechanism | quote }}
- name: KAFKA_SASL_USERNAME
  value: {{ .Values.externalKafka.sasl.username | quote }}
{{ include "ticket-pipeline.kafkaPasswordEnv" . }}
{{- end }}
{{- if include "ticket-pipeline.kafkaCa" . }}
- name: KAFKA_SSL_CA_FILE
  value: {{ include "ticket-pipeline.kafkaCaFile" . | quote }}
{{- end }}
{{- end -}}

{{- define "ticket-pipeline.kafkaCaFile" -}}
/etc/kafka-ca/{{ .Values.externalKafka.tls.caKey }}
{{- end -}}

{{/* The CA's volume mount (a list item), or nothing. */}}
{{- define "ticket-pipeline.kafkaCaVolumeMount" -}}
{{- if include "ticket-pipeline.kafkaCa" . -}}
- name: kafka-ca
  mountPath: /etc/kafka-ca
  readOnly: true
{{- end -}}
{{- end -}}

{{/* The CA's volume (a list item), or nothing. */}}
{{- define "ticket-pipeline.kafkaCaVolume" -}}
{{- if include "ticket-pipeline.kafkaCa" . -}}
- name: kafka-ca
  secret:
    secretName: {{ .Values.externalKafka.tls.caSecret | quote }}
    items:
      - key: {{ .Values.externalKafka.tls.caKey | quote }}
        path: {{ .Values.externalKafka.tls.caKey | quote }}
{{- end -}}
{{- end -}}
