/** A thing gvmi-test noticed that will matter on a provider, with what to do about it. */
export type FindingCode =
  | 'shadowed-files'
  | 'entrypoint-ignored'
  | 'user-dropped'
  | 'no-volumes'
  | 'no-etc'
  | 'image-large'
  | 'non-amd64';

export interface Finding {
  code: FindingCode;
  severity: 'error' | 'warning' | 'info';
  message: string;
  fix: string;
  /** Paths concerned, when there are any. */
  paths?: string[];
}
