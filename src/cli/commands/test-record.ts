export default async function recordCommand(): Promise<number> { return 0; }
