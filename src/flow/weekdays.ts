// Weekday names of windows and pauses; a module of its own so workflows need not load the schema.
export const WEEKDAYS = ['MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT', 'SUN'] as const;
