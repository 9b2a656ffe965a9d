import { retireCredentials } from '../ca/rotation/credential-rotation.js';
import { FORCE_FLAG, rotationStepCommand } from './rotation-flags.js';

/** `warden rotate retire`: drop the old root from the anchors. */
export const rotateRetireCommand = rotationStepCommand({
  name: 'rotate retire',
  summary: 'Drop the old root from the trust anchors',
  details:
    'Refused until every certificate signed under the old root has expired (activation + workloadCertTTL +\n' +
    'allowedClockSkew: nothing is signed by the old issuer after activation), unless --force.\n' +
    'With JWT key files in the directory, the previous JWT key leaves jwks.json too.',
  flags: FORCE_FLAG,
  run: (context, flags) => retireCredentials(context, { force: flags.values.force === true }),
});
