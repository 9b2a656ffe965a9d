import { activateCredentials } from '../ca/rotation/credential-rotation.js';
import { FORCE_FLAG, rotationStepCommand } from './rotation-flags.js';

/** `warden rotate activate`: the prepared issuer signs from now on. */
export const rotateActivateCommand = rotationStepCommand({
  name: 'rotate activate',
  summary: 'Switch signing to the prepared next issuer',
  details:
    'Afterwards the issuer files hold the new issuer. Refused until the next root has been published for the\n' +
    'propagation window (workloadCertTTL + allowedClockSkew unless configured), unless --force.\n' +
    'With JWT key files in the directory, the next JWT key signs from now on too (the old one stays published).',
  flags: FORCE_FLAG,
  run: (context, flags) => activateCredentials(context, { force: flags.values.force === true }),
});
