/**
 * What loading a project yields: the parsed definitions with their files, and every
 * diagnostic found on the way. Loading never throws for user mistakes; it returns them.
 */
import type { Diagnostic } from './diagnostics.js';
import type { SourceFile } from './source-file.js';
import type { ConnectorManifest, IntegrationDef, ProjectConfig, WorkflowDef } from './model.js';

export interface LoadedWorkflow {
  integration: string;
  name: string;
  /** Path relative to the project root, with forward slashes. */
  file: string;
  def: WorkflowDef;
}

export interface LoadedIntegration {
  name: string;
  /** Folder relative to the project root. */
  dir: string;
  file: string;
  def: IntegrationDef;
  workflows: LoadedWorkflow[];
  /** Test files under tests/ (`*.test.yaml`), schema-checked; run by `alloy test`. */
  tests?: LoadedTestFile[];
}

export interface LoadedTestFile {
  /** Path relative to the project root. */
  file: string;
  /** The parsed file (positions kept, for locating failed expectations). */
  source: SourceFile;
  /** True when the file passed its checks (schema, workflow name). */
  valid: boolean;
}

export interface LoadedConnector {
  file: string;
  def: ConnectorManifest;
}

export interface LoadedProject {
  /** Absolute path of the project root (the folder of the config file). */
  root: string;
  /** Config file relative to root, when one was found. */
  configFile?: string;
  config: ProjectConfig;
  integrations: LoadedIntegration[];
  connectors: LoadedConnector[];
  /** Every definition file read (relative to root), valid or not. */
  files: string[];
  diagnostics: Diagnostic[];
  /**
   * Problems in test files (tests/*.test.yaml), apart: `validate`, `test` and `release`
   * report them, while a broken test never stops `dev` or `run` from serving the workflows.
   */
  testDiagnostics?: Diagnostic[];
}
