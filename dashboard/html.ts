/** Text made safe for HTML, in an element or a quoted attribute. */
export const escape = (text: string): string => text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** A count with thousands separators: 100,000 reads at a glance, 100000 does not. */
export const count = (n: number): string => n.toLocaleString('en-US');
