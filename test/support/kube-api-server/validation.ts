import type { FieldError } from './status.js';

/** Kubernetes' apimachinery name validation, with its exact messages. */
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;

export const DNS1123_LABEL_MESSAGE =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
export const DNS1123_SUBDOMAIN_MESSAGE =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const CONFIG_KEY_MESSAGE =
  "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";

/** Go's %q for the strings we echo: JSON quoting is close enough for printable input. */
export function goQuote(value: string): string {
  return JSON.stringify(value);
}

export function dns1123LabelErrors(value: string): string[] {
  const errors: string[] = [];
  if (value.length > 63) errors.push('must be no more than 63 characters');
  if (!DNS1123_LABEL.test(value)) errors.push(DNS1123_LABEL_MESSAGE);
  return errors;
}

export function dns1123SubdomainErrors(value: string): string[] {
  const errors: string[] = [];
  if (value.length > 253) errors.push('must be no more than 253 characters');
  if (!DNS1123_SUBDOMAIN.test(value)) errors.push(DNS1123_SUBDOMAIN_MESSAGE);
  return errors;
}

export function nameErrors(
  rule: 'subdomain' | 'label',
  name: string,
  field = 'metadata.name',
): FieldError[] {
  const messages = rule === 'label' ? dns1123LabelErrors(name) : dns1123SubdomainErrors(name);
  return messages.map((detail) => ({
    type: 'FieldValueInvalid',
    field,
    value: goQuote(name),
    detail,
  }));
}

export function configKeyErrors(key: string, field: string): FieldError[] {
  const errors: FieldError[] = [];
  if (key.length > 253)
    errors.push({
      type: 'FieldValueInvalid',
      field,
      value: goQuote(key),
      detail: 'must be no more than 253 characters',
    });
  if (!CONFIG_KEY.test(key))
    errors.push({
      type: 'FieldValueInvalid',
      field,
      value: goQuote(key),
      detail: CONFIG_KEY_MESSAGE,
    });
  return errors;
}

/** Go's encoding/json decodes []byte with StdEncoding: padding required, no whitespace. */
export function isStdBase64(value: string): boolean {
  return /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(value);
}
