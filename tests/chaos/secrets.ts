/**
 * Where each secret appears among the given texts, in plain, URL-encoded or
 * base64 form; an empty list when none does.
 */
export function findSecrets(secrets: string[], sources: Record<string, string>): string[] {
  const found: string[] = [];
  for (const secret of secrets) {
    const forms = [secret, encodeURIComponent(secret), Buffer.from(secret).toString('base64')];
    for (const [where, text] of Object.entries(sources)) {
      if (forms.some((form) => text.includes(form))) found.push(`a secret (${secret.slice(0, 3)}...) appears in ${where}`);
    }
  }
  return found;
}
