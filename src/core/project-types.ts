/**
 * What loading a project yields: the parsed definitions with their files, and every
 * diagnostic found on the way. Loading never throws for user mistakes; it returns them.
 */
import type { Diagnostic } from './diagnostics.js';
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
}
