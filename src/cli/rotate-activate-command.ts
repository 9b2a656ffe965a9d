import { activateRotation } from '../ca/rotation/rotation-steps.js';
import { FORCE_FLAG, rotationStepCommand } from './rotation-flags.js';

/** `warden rotate activate`: the prepared issuer signs from now on. */
export const rotateActivateCommand = rotationStepCommand({
  name: 'rotate activate',
  summary: 'Switch signing to the prepared next issuer',
  details:
    'Afterwards the issuer files hold the new issuer. Refused until the next root has been published for the\n' +
    'propagation window (workloadCertTTL + allowedClockSkew unless configured), unless --force.',
  flags: FORCE_FLAG,
  run: (context, flags) => activateRotation(context, { force: flags.values.force === true }),
});
