import { CONTROL_PLANE_IDS } from '../../../src/issuer/control-plane.js';
import { createKubernetesValidator } from '../../../src/issuer/validators/kubernetes/kubernetes-validator.js';
import {
  checkedRequest,
  describeValidatorConformance,
} from '../../conformance/validator-conformance.js';
import { KubeApiServer } from '../../support/kube-api-server/index.js';
import {
  CA_NAMESPACE,
  CONTROL_PLANE_TRUST_DOMAIN,
  podToken,
  putConfiguration,
  putPod,
  randomToken,
  SENTRY_AUDIENCE,
  VALIDATOR_RULES,
  WARDEN_USERNAME,
} from '../../support/kube-validator-fixtures.js';

/*
 * The validator conformance suite for the kubernetes validator. A proof is what a real pod
 * has: a pod in the API server annotated for the identity (control-plane ids in the CA
 * namespace as control-plane pods; a trust domain through a Configuration), and a projected
 * service-account token bound to it.
 */
describeValidatorConformance(
  'kubernetes (Kubernetes API test server, real client-node)',
  async () => {
    const server = await KubeApiServer.start({ namespaces: ['default', CA_NAMESPACE] });
    const wardenToken = randomToken('warden');
    server.addToken(wardenToken, { username: WARDEN_USERNAME, rules: VALIDATOR_RULES });
    const validator = createKubernetesValidator({
      kubeConfig: server.kubeConfig(wardenToken),
      caNamespace: CA_NAMESPACE,
      audience: SENTRY_AUDIENCE,
      controlPlaneTrustDomain: CONTROL_PLANE_TRUST_DOMAIN,
    });
    await validator.start();
    await validator.whenSynced();
    let serial = 0;
    return {
      validator,
      caNamespace: CA_NAMESPACE,
      checksProof: true,
      trustDomainFromProof: true,
      async provingRequest(fields) {
        serial += 1;
        const annotations: Record<string, string> = {};
        if (fields.namespace === CA_NAMESPACE && CONTROL_PLANE_IDS.has(fields.id)) {
          annotations['dapr.io/control-plane'] = fields.id.slice('dapr-'.length);
        } else {
          annotations['dapr.io/app-id'] = fields.id;
          if (fields.trustDomain !== '') {
            putConfiguration(server, fields.namespace, `config-${serial}`, {
              accessControl: { trustDomain: fields.trustDomain },
            });
            annotations['dapr.io/config'] = `config-${serial}`;
          }
        }
        const pod = putPod(server, {
          namespace: fields.namespace,
          name: `${fields.id}-${serial}`,
          annotations,
        });
        return checkedRequest(fields, podToken(server, pod));
      },
      async cleanup() {
        await server.close();
      },
    };
  },
);
