{{- define "kubeshim.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kubeshim.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "kubeshim.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubeshim.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kubeshim.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "kubeshim.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "kubeshim.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kubeshim.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "kubeshim.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "kubeshim.fullname" .)) .Values.tls.existingSecret -}}
{{- end -}}

{{- define "kubeshim.tokenSecretName" -}}
{{- default (printf "%s-token" (include "kubeshim.fullname" .)) .Values.auth.token.existingSecret -}}
{{- end -}}

{{/* The names clients reach the Service by. */}}
{{- define "kubeshim.serviceNames" -}}
{{- $svc := include "kubeshim.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) | toJson -}}
{{- end -}}

{{- define "kubeshim.passThrough" -}}
{{- if eq .Values.upstream.credentials "passThrough" -}}true{{- end -}}
{{- end -}}

{{- define "kubeshim.validate" -}}
{{- if not (has .Values.upstream.credentials (list "serviceAccount" "passThrough")) -}}
{{- fail (printf "upstream.credentials must be serviceAccount or passThrough, not %q" .Values.upstream.credentials) -}}
{{- end -}}
{{- if not (has .Values.upstream.protocol (list "auto" "spdy" "websocket")) -}}
{{- fail (printf "upstream.protocol must be auto, spdy or websocket, not %q" .Values.upstream.protocol) -}}
{{- end -}}
{{- if and (include "kubeshim.passThrough" .) .Values.auth.token.enabled -}}
{{- fail "upstream.credentials=passThrough forwards each client's own token: set auth.token.enabled=false and auth.clientCA.enabled=true" -}}
{{- end -}}
{{- if not (or .Values.auth.token.enabled .Values.auth.clientCA.enabled) -}}
{{- fail "kubeshim listens on every interface of the pod: enable auth.token or auth.clientCA" -}}
{{- end -}}
{{- if and .Values.auth.clientCA.enabled (not .Values.auth.clientCA.existingSecret) -}}
{{- fail "auth.clientCA.enabled needs auth.clientCA.existingSecret (a Secret holding the CA)" -}}
{{- end -}}
{{- end -}}
