export declare const CONSOLE_DIST: string;
export declare function consoleSourceHash(): string;
export declare function consoleIsFresh(hash?: string): boolean;
export declare function ensureConsoleBuilt(opts?: { log?: (message: string) => void }): Promise<boolean>;
